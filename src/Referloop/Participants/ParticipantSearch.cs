namespace Referloop.Participants;

public static class ParticipantSearch
{
    /// <summary>
    /// Participants whose email or name contains <paramref name="search"/> (ignoring case) or whose code is exactly it;
    /// all of them when it is empty. The API's list and the dashboard search the same way.
    /// </summary>
    public static IQueryable<Participant> Matching(this IQueryable<Participant> participants, string? search)
    {
        if (string.IsNullOrWhiteSpace(search))
        {
            return participants;
        }
        var term = search.Trim();
        var lower = term.ToLowerInvariant();
        return participants.Where(p => p.Email.Contains(lower) || p.Code == term || (p.Name != null && p.Name.ToLower().Contains(lower)));
    }
}
