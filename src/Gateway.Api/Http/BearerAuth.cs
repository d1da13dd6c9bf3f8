using System.Security.Cryptography;
using System.Text;
using Gateway.Api.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Http;

/// <summary>
/// Checks <c>Authorization: Bearer &lt;secret&gt;</c> against the configured token or password (spec §3):
/// scheme case-insensitive, spaces trimmed, compared in constant time. Secrets are never logged.
/// </summary>
public sealed class BearerAuth
{
    private readonly AuthMode _mode;
    private readonly byte[]? _secretHash;

    public BearerAuth(IOptions<GatewayOptions> options)
    {
        _mode = options.Value.AuthMode;
        _secretHash = options.Value.Secret is { } secret ? SHA256.HashData(Encoding.UTF8.GetBytes(secret)) : null;
    }

    public AuthResult Check(HttpRequest request)
    {
        if (_mode == AuthMode.None) return AuthResult.Allowed;
        if (Credential(request.Headers.Authorization.ToString()) is not { } presented) return AuthResult.Missing;
        // Hashing first makes the comparison independent of the presented length as well. Per request,
        // so into stack memory: a bearer is short; an absurdly long one is hashed from the heap.
        var byteCount = Encoding.UTF8.GetByteCount(presented);
        var bytes = byteCount <= 512 ? stackalloc byte[byteCount] : new byte[byteCount];
        Encoding.UTF8.GetBytes(presented, bytes);
        Span<byte> presentedHash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes, presentedHash);
        return _secretHash is not null && CryptographicOperations.FixedTimeEquals(presentedHash, _secretHash)
            ? AuthResult.Allowed
            : AuthResult.Wrong;
    }

    private static string? Credential(string header)
    {
        var value = header.Trim();
        if (value.Length <= "bearer".Length || !value.StartsWith("bearer", StringComparison.OrdinalIgnoreCase)) return null;
        if (!char.IsWhiteSpace(value["bearer".Length])) return null;
        var credential = value["bearer".Length..].Trim();
        return credential.Length == 0 ? null : credential;
    }
}

public enum AuthResult { Allowed, Missing, Wrong }
