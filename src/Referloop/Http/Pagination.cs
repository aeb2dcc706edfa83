using System.Buffers.Text;
using System.Text;

namespace Referloop.Http;

/// <summary>One page of a list. <c>nextCursor</c> is null on the last page.</summary>
public sealed record Page<T>(IReadOnlyList<T> Data, string? NextCursor);

/// <summary>
/// Keyset pagination over time-ordered ids: the cursor is the last id of the previous page, encoded so that
/// clients treat it as opaque. Cost stays flat however deep the client pages.
/// </summary>
public static class Paging
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 200;

    public static string Encode(string lastId) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(lastId));

    public static bool TryDecode(string? cursor, out string? lastId)
    {
        lastId = null;
        if (string.IsNullOrEmpty(cursor))
        {
            return true;
        }
        try
        {
            lastId = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
            // Ids are plain text: a control character (NUL, which PostgreSQL's text refuses) is no cursor of ours.
            return lastId.Length is > 0 and < 100 && !lastId.Any(char.IsControl);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public static void ValidateQuery(ValidationErrors errors, string? cursor, int? limit)
    {
        if (!TryDecode(cursor, out _))
        {
            errors.Add("cursor", "is not a cursor returned by this API.");
        }
        errors.Range("limit", limit, 1, MaxLimit);
    }

    public static Page<TOut> ToPage<TIn, TOut>(List<TIn> rows, int limit, Func<TIn, string> id, Func<TIn, TOut> map)
    {
        var hasMore = rows.Count > limit;
        if (hasMore)
        {
            rows.RemoveAt(rows.Count - 1);
        }
        return new Page<TOut>(rows.Select(map).ToList(), hasMore ? Encode(id(rows[^1])) : null);
    }
}
