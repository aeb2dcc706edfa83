using System.Text.RegularExpressions;
using CsvHelper;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Participants;

/// <summary>One participant as a CSV file from another platform lists them; <see cref="Line"/> is its line in the file.</summary>
public sealed record ImportRow(int Line, string? Email, string? Name, string? Code, string? Role, string? ReferredBy, string? CustomValue);

/// <summary>A rule a row broke: its line in the file (the header is line 1), the column and the rule.</summary>
public sealed record ImportRowError(int Row, string? Column, string Rule);

/// <summary>
/// What an import did, or would do in a dry run: the rows read, the participants created (or to be created), those
/// already in the campaign and left as they are, the referrals created for rows with <c>referredBy</c>, and every
/// row error. <see cref="Imported"/> is true only when the rows were written.
/// </summary>
public sealed record ParticipantImportReport(bool DryRun, bool Imported, int Rows, int Created, int Existing, int Referrals,
    IReadOnlyList<ImportRowError> Errors);

/// <summary>What the rows of an import hold, read before <see cref="ParticipantImport.Plan"/> decides.</summary>
/// <param name="ByEmail">The campaign's participants with an email of the file.</param>
/// <param name="ByCode">Participants of any campaign with a code of the file (in <c>code</c> or <c>referredBy</c>).</param>
public sealed record ImportFacts(Campaign Campaign, DateTimeOffset Now, IReadOnlyDictionary<string, Participant> ByEmail,
    IReadOnlyDictionary<string, Participant> ByCode);

/// <summary>The rows to write for an import without errors.</summary>
public sealed record ImportPlan(List<Participant> Participants, List<Referral> Referrals, int Existing);

/// <summary>
/// Participants imported from a CSV file (a migration from another platform): columns <c>email</c> (required),
/// <c>name</c>, <c>code</c> (an existing share code, kept), <c>role</c> (<c>advocate</c>, the default, or
/// <c>friend</c>), <c>referredBy</c> (the code of the advocate who referred them, in the file or in the campaign) and
/// <c>customValue</c>. Reading the file and deciding over it are separate; nothing is written unless every row is valid.
/// </summary>
public static partial class ParticipantImport
{
    /// <summary>The largest file taken, in bytes: larger ones are refused with 413.</summary>
    public const int MaxBytes = 2 * 1024 * 1024;

    /// <summary>The most data rows one import takes: more are refused with 422.</summary>
    public const int MaxRows = 10_000;

    /// <summary>How a referral made from <c>referredBy</c> says it was attributed.</summary>
    public const string AttributedByImport = "import";

    private static readonly string[] Columns = ["email", "name", "code", "role", "referredBy", "customValue"];

    /// <summary>
    /// Reads the rows of a CSV file with a header row (separator detected: comma, semicolon, tab or pipe; column names
    /// matched ignoring case, spaces, '_' and '-'). Errors about the file as a whole come back instead of rows.
    /// </summary>
    public static (List<ImportRow> Rows, List<ImportRowError> Errors) Read(byte[] csv)
    {
        var rows = new List<ImportRow>();
        var errors = new List<ImportRowError>();
        var options = CsvReaderOptions.Default with
        {
            HasHeader = true,
            TrimWhitespace = true,
            TrackLineNumbers = true,
            SkipEmptyLines = true,
            MalformedData = CsvMalformedDataHandling.Throw,
            MaxRecordSize = 64 * 1024,
            IncludeValuesInExceptions = false,
            NormalizeHeaderName = name => name.Replace("_", "").Replace("-", "").Replace(" ", "").ToLowerInvariant(),
        };
        try
        {
            using var reader = CsvReader.Create(csv, options);
            reader.ReadHeader();
            var index = Columns.ToDictionary(c => c, c => reader.TryGetFieldIndex(c, out var i) ? i : -1);
            if (index["email"] < 0)
            {
                errors.Add(new ImportRowError(1, "email", "the header row must name an 'email' column (and may name name, code, role, referredBy, customValue)."));
                return (rows, errors);
            }
            while (reader.Read())
            {
                if (rows.Count == MaxRows)
                {
                    errors.Add(new ImportRowError((int)reader.LineNumber, null, $"the file has more than {MaxRows:N0} rows; split it."));
                    return ([], errors);
                }
                string? Field(string column) =>
                    index[column] is var i && i >= 0 && i < reader.FieldCount && !reader.IsEmpty(i) ? reader.GetString(i) : null;
                rows.Add(new ImportRow((int)reader.LineNumber, Field("email"), Field("name"), Field("code"), Field("role"),
                    Field("referredBy"), Field("customValue")));
            }
        }
        catch (CsvFormatException e)
        {
            errors.Add(new ImportRowError((int)Math.Max(e.LineNumber, 1), null, $"the file is not valid CSV: {e.Message}"));
        }
        return (rows, errors);
    }

    private const string NulRule = "must not contain a NUL character.";

    /// <summary>Every email and code the rows name: what <see cref="ImportFacts"/> must hold.</summary>
    public static (List<string> Emails, List<string> Codes) Keys(IEnumerable<ImportRow> rows)
    {
        var list = rows.ToList();
        var emails = list.Select(r => r.Email).OfType<string>().Where(JoinParticipant.IsEmail).Select(Participant.NormaliseEmail).Distinct().ToList();
        // Only what can be a code: anything else is a row error, and is not looked up (a NUL would fail the read on PostgreSQL).
        var codes = list.SelectMany(r => new[] { r.Code, r.ReferredBy }).OfType<string>().Where(CodePattern().IsWholeMatch).Distinct().ToList();
        return (emails, codes);
    }

    /// <summary>
    /// Decides an import over the rows and what is stored: the errors of every row, or the rows to write. A row whose
    /// email is in the campaign already is left as it is (so an import can run again), unless it names another code.
    /// </summary>
    public static (ImportPlan? Plan, List<ImportRowError> Errors) Plan(ImportFacts facts, IReadOnlyList<ImportRow> rows)
    {
        var errors = new List<ImportRowError>();
        if (rows.Count == 0)
        {
            errors.Add(new ImportRowError(2, null, "the file has no rows after its header."));
            return (null, errors);
        }
        var firstLineOfEmail = new Dictionary<string, int>();
        var firstLineOfCode = new Dictionary<string, int>(StringComparer.Ordinal);
        // Advocates the file creates: a row of a participant already stored leaves them as they are, advocate or not.
        var advocatesInFile = rows
            .Where(r => r.Code is not null && IsAdvocate(r.Role) && !(r.Email is { } e && facts.ByEmail.ContainsKey(Participant.NormaliseEmail(e))))
            .Select(r => r.Code!).ToHashSet(StringComparer.Ordinal);
        var valid = new List<(ImportRow Row, string Email, bool Advocate)>();
        var existing = 0;
        foreach (var row in rows)
        {
            var before = errors.Count;
            void Error(string column, string rule) => errors.Add(new ImportRowError(row.Line, column, rule));

            string? email = null;
            if (row.Email is null)
            {
                Error("email", "is required.");
            }
            else if (!JoinParticipant.IsEmail(row.Email))
            {
                Error("email", "must be an email address such as ann@example.com (at most 254 characters).");
            }
            else
            {
                email = Participant.NormaliseEmail(row.Email);
                if (!firstLineOfEmail.TryAdd(email, row.Line))
                {
                    Error("email", $"repeats the email of row {firstLineOfEmail[email]}.");
                }
            }
            if (row.Name is { Length: > 200 })
            {
                Error("name", "must be at most 200 characters.");
            }
            else if (row.Name?.Contains('\0') == true)
            {
                Error("name", NulRule);
            }
            if (row.CustomValue is { Length: > 500 })
            {
                Error("customValue", "must be at most 500 characters.");
            }
            else if (row.CustomValue?.Contains('\0') == true)
            {
                Error("customValue", NulRule);
            }
            var role = row.Role?.ToLowerInvariant();
            if (role is not (null or "advocate" or "referrer" or "friend" or "invited"))
            {
                Error("role", "must be 'advocate' or 'friend' (or empty: advocate).");
            }
            var stored = email is null ? null : facts.ByEmail.GetValueOrDefault(email);
            if (row.Code is { } code)
            {
                if (!CodePattern().IsWholeMatch(code))
                {
                    Error("code", "must be 4–32 letters, digits, '_' or '-' (it is the share link's last segment).");
                }
                else if (!firstLineOfCode.TryAdd(code, row.Line))
                {
                    Error("code", $"repeats the code of row {firstLineOfCode[code]}.");
                }
                else if (facts.ByCode.TryGetValue(code, out var owner) && owner.Id != stored?.Id)
                {
                    Error("code", "is already the code of another participant (codes are unique across campaigns).");
                }
                else if (stored is not null && stored.Code != code)
                {
                    Error("code", $"differs from the code {stored.Code} of the campaign's participant with this email.");
                }
            }
            if (row.ReferredBy is { } referredBy)
            {
                var inCampaign = facts.ByCode.TryGetValue(referredBy, out var advocate) && advocate.CampaignId == facts.Campaign.Id
                    && advocate.IsReferrer;
                if (referredBy == row.Code)
                {
                    Error("referredBy", "is the row's own code: a participant cannot refer themselves.");
                }
                else if (!inCampaign && !advocatesInFile.Contains(referredBy))
                {
                    Error("referredBy", "must be the code of an advocate of the campaign or of an advocate row of the file.");
                }
            }
            else if (role is "friend" or "invited")
            {
                Error("referredBy", "is required for a friend: the code of the advocate who referred them.");
            }

            if (errors.Count > before)
            {
                continue;
            }
            if (stored is not null)
            {
                existing++;
                continue;
            }
            valid.Add((row, email!, IsAdvocate(role)));
        }
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var now = facts.Now;
        var plan = new ImportPlan([], [], existing);
        var created = valid.Select(v => new Participant
        {
            Id = Ids.New("par"),
            CampaignId = facts.Campaign.Id,
            Email = v.Email,
            Name = v.Row.Name,
            CustomValue = v.Row.CustomValue,
            Code = v.Row.Code ?? Secrets.NewCode(),
            IsReferrer = v.Advocate,
            CreatedAt = now,
            UpdatedAt = now,
        }).ToList();
        var byCode = created.Where((_, i) => valid[i].Row.Code is not null).ToDictionary(p => p.Code, StringComparer.Ordinal);
        for (var i = 0; i < created.Count; i++)
        {
            var participant = created[i];
            plan.Participants.Add(participant);
            if (valid[i].Row.ReferredBy is not { } referredBy)
            {
                continue;
            }
            var advocate = byCode.GetValueOrDefault(referredBy) ?? facts.ByCode[referredBy];
            participant.IsInvited = true;
            participant.ReferredById = advocate.Id;
            participant.ReferredAt = participant.CreatedAt;
            // Pending, as after a sign-up: what the friend does from now on converts it; what they did before is the old platform's.
            var referral = new Referral
            {
                Id = Ids.New("ref"),
                CampaignId = facts.Campaign.Id,
                AdvocateId = advocate.Id,
                FriendId = participant.Id,
                Status = ReferralStatus.Pending,
                Reason = "imported",
                AttributedBy = AttributedByImport,
                CreatedAt = now,
                UpdatedAt = now,
                History = [new ReferralStatusChange(null, ReferralStatus.Pending, "imported", now)],
            };
            plan.Referrals.Add(referral);
        }
        return (plan, errors);
    }

    private static bool IsAdvocate(string? role) => role is null || role.Equals("advocate", StringComparison.OrdinalIgnoreCase)
        || role.Equals("referrer", StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex("^[A-Za-z0-9_-]{4,32}$")]
    private static partial Regex CodePattern();
}
