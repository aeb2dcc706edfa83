using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Referloop.HostedPages;
using Referloop.Storage;

namespace Referloop.Email;

/// <summary>
/// <c>/unsubscribe/{token}</c>, the link in every notification mail: opening it asks, the button (or a mail client's
/// one-click POST, RFC 8058, which carries no form token) records the opt-out on the participant and skips their
/// pending notifications. The magic link still comes when they ask for it.
/// </summary>
[IgnoreAntiforgeryToken]
public sealed class UnsubscribeModel(ReferloopDb db, TimeProvider clock, EmailLinks links) : HostedPageModel
{
    public bool Unsubscribed { get; private set; }

    public async Task<IActionResult> OnGetAsync(string token, CancellationToken ct)
    {
        var participant = await FindAsync(token, ct);
        if (participant is null)
        {
            return NotFoundPage();
        }
        Unsubscribed = participant.EmailOptedOutAt is not null;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string token, CancellationToken ct)
    {
        var participant = await FindAsync(token, ct);
        if (participant is null)
        {
            return NotFoundPage();
        }
        var now = clock.GetUtcNow();
        await db.Participants.Where(p => p.Id == participant.Id && p.EmailOptedOutAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.EmailOptedOutAt, now).SetProperty(p => p.UpdatedAt, now), ct);
        await db.Set<EmailSend>()
            .Where(s => s.ParticipantId == participant.Id && s.Status == EmailStatus.Pending && s.Kind != EmailKind.MagicLink)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.Status, EmailStatus.Skipped)
                .SetProperty(e => e.LastError, "the participant unsubscribed")
                .SetProperty(e => e.UpdatedAt, now), ct);
        Unsubscribed = true;
        Title = Text["UnsubscribedTitle"];
        return Page();
    }

    private async Task<Participants.Participant?> FindAsync(string token, CancellationToken ct)
    {
        var id = links.ParticipantOf(token);
        var participant = id is null ? null
            : await db.Participants.AsNoTracking().Include(p => p.Campaign).FirstOrDefaultAsync(p => p.Id == id, ct);
        Use(participant?.Campaign);
        Title = Text[participant?.EmailOptedOutAt is null ? "UnsubscribeTitle" : "UnsubscribedTitle"];
        return participant;
    }
}
