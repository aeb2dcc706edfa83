namespace Referloop.Storage;

/// <summary>
/// Opaque, prefixed identifiers (<c>cmp_…</c>, <c>par_…</c>). The body is a version-7 GUID, so ids sort by
/// creation time as plain strings, which is what cursor pagination orders by.
/// </summary>
public static class Ids
{
    public static string New(string prefix) => $"{prefix}_{Guid.CreateVersion7():N}";
}
