using Dashboard.App.Isolation;

namespace Dashboard.App.Changes;

public sealed record ChangeWhatIf(WhatIf Alone, WhatIf? WithOthers, IReadOnlyList<int> Others);
