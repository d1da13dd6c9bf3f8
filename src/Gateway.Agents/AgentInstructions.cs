namespace Gateway.Agents;

/// <summary>
/// An agent's own system prompt: its workspace's <c>AGENTS.md</c>, then <c>SOUL.md</c> if present,
/// joined by a blank line. Read when a session starts, so an edit applies to new sessions.
/// </summary>
public static class AgentInstructions
{
    public static readonly string[] FileNames = ["AGENTS.md", "SOUL.md"];

    public static string? Load(string? workspace)
    {
        if (string.IsNullOrWhiteSpace(workspace)) return null;
        var folder = workspace.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), workspace[2..])
            : workspace;
        var parts = FileNames
            .Select(name => Path.Combine(folder, name))
            .Where(File.Exists)
            .Select(path => File.ReadAllText(path).Trim())
            .Where(text => text.Length > 0)
            .ToList();
        return parts.Count == 0 ? null : string.Join("\n\n", parts);
    }
}
