using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;

namespace Referloop.Dashboard.Shared;

/// <summary>One page of a newest-first list, with the cursors of the "Older" and "Newer" links (null: no such link).</summary>
public sealed record KeysetPage<T>(IReadOnlyList<T> Rows, string? Older, string? Newer);

/// <summary>
/// Newest-first keyset pages over time-ordered ids for the dashboard's long lists. The cursors are those of the API
/// (<see cref="Paging"/>): "before" pages towards older rows, "after" back towards newer ones. A cursor that does not
/// decode shows the newest page, as a hand-edited address should.
/// </summary>
public static class Keyset
{
    private static readonly System.Reflection.MethodInfo StringCompare =
        typeof(string).GetMethod(nameof(string.Compare), [typeof(string), typeof(string)])!;

    public static async Task<KeysetPage<TOut>> NewestFirstAsync<T, TOut>(IQueryable<T> query, Expression<Func<T, string>> id,
        Expression<Func<T, TOut>> select, Func<TOut, string> rowId, string? before, string? after, int size, CancellationToken ct)
    {
        var olderThan = Paging.TryDecode(before, out var b) ? b : null;
        var newerThan = olderThan is null && Paging.TryDecode(after, out var a) ? a : null;
        if (newerThan is not null)
        {
            var rows = await query.Where(Compare(id, newerThan, Expression.GreaterThan)).OrderBy(id).Take(size + 1)
                .Select(select).ToListAsync(ct);
            var moreNewer = rows.Count > size;
            if (moreNewer)
            {
                rows.RemoveAt(rows.Count - 1);
            }
            if (rows.Count > 0)
            {
                rows.Reverse();
                return new(rows, Paging.Encode(rowId(rows[^1])), moreNewer ? Paging.Encode(rowId(rows[0])) : null);
            }
            // Nothing newer than the cursor: the newest page is what the reader is after.
        }
        var filtered = olderThan is null ? query : query.Where(Compare(id, olderThan, Expression.LessThan));
        var page = await filtered.OrderByDescending(id).Take(size + 1).Select(select).ToListAsync(ct);
        var moreOlder = page.Count > size;
        if (moreOlder)
        {
            page.RemoveAt(page.Count - 1);
        }
        // An older page always has something newer; when it came back empty (rows deleted meanwhile) the cursor
        // itself still marks where the newer rows start.
        var newer = olderThan is null ? null : Paging.Encode(page.Count > 0 ? rowId(page[0]) : olderThan);
        return new(page, moreOlder ? Paging.Encode(rowId(page[^1])) : null, newer);
    }

    /// <summary><c>string.Compare(row.Id, cursor) &lt;op&gt; 0</c>, which EF Core translates to a plain comparison of the key.</summary>
    private static Expression<Func<T, bool>> Compare<T>(Expression<Func<T, string>> id, string cursor,
        Func<Expression, Expression, BinaryExpression> op)
    {
        Expression<Func<string>> value = () => cursor;
        var compared = Expression.Call(StringCompare, id.Body, value.Body);
        return Expression.Lambda<Func<T, bool>>(op(compared, Expression.Constant(0)), id.Parameters);
    }
}
