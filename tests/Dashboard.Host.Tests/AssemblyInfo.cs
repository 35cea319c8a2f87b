// Real-host tests share two cores, one engine and the host's rules: one test class at a time (a ping's reply missed
// its one-second wait while a browser test loaded the machine).
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
