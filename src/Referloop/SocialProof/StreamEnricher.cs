using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.SocialProof;

/// <summary>
/// Completes a stream payload into a social-proof item: names from a known participant or the email, location
/// from the payload or the IP address, country and US state filled from their codes and back.
/// </summary>
public sealed class StreamEnricher(ReferloopDb db, IGeoIp geoIp)
{
    public async Task<SocialProofItem> EnrichAsync(StreamPayload payload, string campaignId, string hookId, string requestId,
        DateTimeOffset now, CancellationToken ct)
    {
        var (firstName, lastName) = (payload.FirstName, payload.LastName);
        if (firstName is null || lastName is null)
        {
            var known = await db.Participants.AsNoTracking()
                .Where(p => p.CampaignId == campaignId && p.Email == payload.Email && p.Name != null)
                .Select(p => p.Name)
                .FirstOrDefaultAsync(ct);
            var (first, last) = known is not null ? Names.FromFullName(known) : Names.FromEmail(payload.Email);
            if (firstName is null)
            {
                (firstName, lastName) = (first, lastName ?? last);
            }
            else if (known is not null || string.Equals(first, firstName, StringComparison.OrdinalIgnoreCase))
            {
                // Only borrow a last name that belongs with the given first name.
                lastName ??= last;
            }
        }

        var (city, state, stateCode, country, countryCode) =
            (payload.City, payload.State, payload.StateCode, payload.Country, payload.CountryCode);
        var locatedByIp = false;
        var givenLocation = city ?? state ?? stateCode ?? country ?? countryCode;
        if (givenLocation is null && payload.Ip is not null && geoIp.Locate(payload.Ip) is { } located)
        {
            (city, countryCode, locatedByIp) = (Fit(located.City), located.CountryCode is { Length: 2 } code ? code : null, true);
            if (countryCode == "US")
            {
                state = Fit(located.Region);
            }
        }

        countryCode ??= Places.CountryCode(country);
        if (countryCode is "US" || (countryCode is null && country is null))
        {
            stateCode ??= Places.UsStateCode(state);
            var stateName = Places.UsStateName(stateCode);
            state ??= stateName;
            if (stateName is not null)
            {
                countryCode ??= "US";
            }
        }
        country ??= Places.CountryName(countryCode);

        var (productName, productLink, productImage) = payload.DisplayedProduct();
        return new SocialProofItem
        {
            Id = Ids.New("spi"),
            CampaignId = campaignId,
            HookId = hookId,
            RequestId = requestId,
            Email = payload.Email,
            FirstName = Fit(firstName),
            LastName = Fit(lastName),
            City = city,
            State = state,
            StateCode = stateCode,
            Country = country,
            CountryCode = countryCode,
            LocatedByIp = locatedByIp,
            Guid = payload.Guid,
            ProductName = productName,
            ProductLink = productLink,
            ProductImage = productImage,
            Total = payload.Total,
            Currency = payload.Currency,
            Products = [.. payload.Products],
            OccurredAt = payload.Timestamp ?? now,
            CreatedAt = now,
        };
    }

    /// <summary>Names and places from the GeoIP database or a participant are not bounded by the payload's rules.</summary>
    private static string? Fit(string? text) => text is null || text.Length <= 100 ? text : text[..100];
}
