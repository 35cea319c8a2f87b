namespace Dashboard.Data.Entities;

/// <summary>A team workspace: experiments, runs and change requests belong to one.</summary>
public sealed class Lab
{
    public int Id { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}
