using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Configuration;

public enum AuthMode { Token, Password, None }

public enum BindMode { Loopback, Lan }

/// <summary>Failed-auth rate limit (spec §3); present only when <c>gateway.auth.rateLimit</c> is configured.</summary>
public sealed record AuthRateLimit(int MaxAttempts, TimeSpan Window, TimeSpan Lockout, bool ExemptLoopback);

/// <summary>
/// What the gateway uses of the <c>gateway</c> and <c>session</c> sections, resolved with the
/// environment and command line: <c>--port</c> beats <c>OPENCLAW_GATEWAY_PORT</c> beats
/// <c>gateway.port</c>; a secret in the config beats its environment variable.
/// </summary>
public sealed class GatewayOptions
{
    public const int DefaultPort = 18789;
    public const string PortVariable = "OPENCLAW_GATEWAY_PORT";
    public const string TokenVariable = "OPENCLAW_GATEWAY_TOKEN";
    public const string PasswordVariable = "OPENCLAW_GATEWAY_PASSWORD";

    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; set; } = DefaultPort;

    public BindMode Bind { get; set; } = BindMode.Loopback;

    public AuthMode AuthMode { get; set; } = AuthMode.Token;

    /// <summary>The token or password the bearer must match; null in mode none.</summary>
    public string? Secret { get; set; }

    public AuthRateLimit? RateLimit { get; set; }

    public bool ChatCompletionsEnabled { get; set; }

    /// <summary>An idle session with memory is passivated after this long (<c>session.idleMinutes</c>).</summary>
    public TimeSpan SessionIdle { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Where sessions with memory keep it (<c>gateway.sessions.persistence</c>, <c>gateway.sessions.retentionDays</c>).</summary>
    public SessionStoreOptions SessionStore { get; set; } = new(SessionStoreProvider.Memory, null, null, null);

    /// <summary>Problems found while reading; the validator refuses to start when there are any.</summary>
    public List<string> Problems { get; } = [];

    public void Load(IConfiguration root)
    {
        var reader = new ConfigReader(root);
        Port = root["port"] is { Length: > 0 } portFlag ? reader.Integer("--port", portFlag, 0, 65535) ?? Port
            : root[PortVariable] is { Length: > 0 } portVariable ? reader.Integer(PortVariable, portVariable, 0, 65535) ?? Port
            : reader.Integer(reader.Section("gateway.port"), 0, 65535) ?? Port;
        Bind = reader.OneOf(reader.Section("gateway.bind"), "loopback", "lan") switch
        {
            "lan" => BindMode.Lan,
            _ => BindMode.Loopback,
        };

        var token = reader.String(reader.Section("gateway.auth.token")) is { Length: > 0 } configToken ? configToken : root[TokenVariable];
        var password = reader.String(reader.Section("gateway.auth.password")) is { Length: > 0 } configPassword ? configPassword : root[PasswordVariable];
        var modeSection = reader.Section("gateway.auth.mode");
        AuthMode = reader.OneOf(modeSection, "token", "password", "none") switch
        {
            "token" => AuthMode.Token,
            "password" => AuthMode.Password,
            "none" => AuthMode.None,
            _ => string.IsNullOrEmpty(password) ? AuthMode.Token : AuthMode.Password,
        };
        Secret = AuthMode switch
        {
            AuthMode.Token => token,
            AuthMode.Password => password,
            _ => null,
        };
        if (AuthMode == AuthMode.Token && string.IsNullOrEmpty(Secret))
            reader.Error($"gateway.auth.token: auth mode is 'token' but no token is set (set gateway.auth.token or {TokenVariable})");
        if (AuthMode == AuthMode.Password && string.IsNullOrEmpty(Secret))
            reader.Error($"gateway.auth.password: auth mode is 'password' but no password is set (set gateway.auth.password or {PasswordVariable})");

        var rateLimit = reader.Section("gateway.auth.rateLimit");
        if (rateLimit.Exists())
        {
            RateLimit = new AuthRateLimit(
                reader.Integer(rateLimit.GetSection("maxAttempts"), 1, 1_000_000) ?? 10,
                TimeSpan.FromMilliseconds(reader.Number(rateLimit.GetSection("windowMs"), 1, int.MaxValue) ?? 60_000),
                TimeSpan.FromMilliseconds(reader.Number(rateLimit.GetSection("lockoutMs"), 1, int.MaxValue) ?? 300_000),
                reader.Bool(rateLimit.GetSection("exemptLoopback")) ?? true);
        }

        ChatCompletionsEnabled = reader.Bool(reader.Section("gateway.http.endpoints.chatCompletions.enabled")) ?? false;
        if (reader.Number(reader.Section("session.idleMinutes"), 0.001, 7 * 24 * 60) is { } idleMinutes)
            SessionIdle = TimeSpan.FromMinutes(idleMinutes);
        SessionStore = SessionStoreOptions.Load(root, reader);
        Problems.AddRange(reader.Errors);
    }
}

/// <summary>Refuses to start with every problem found in the config, each naming its key.</summary>
public sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions options) =>
        options.Problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(options.Problems);
}
