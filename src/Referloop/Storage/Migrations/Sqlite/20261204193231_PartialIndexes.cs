using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class PartialIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_rewards_CouponDueAt",
                table: "rewards");

            migrationBuilder.DropIndex(
                name: "IX_referrals_Status_ApproveAfter",
                table: "referrals");

            migrationBuilder.DropIndex(
                name: "IX_participants_MailPortalTokenHash",
                table: "participants");

            migrationBuilder.DropIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants");

            migrationBuilder.DropIndex(
                name: "IX_events_CampaignId_IdempotencyKey",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_events_CampaignId_OrderId",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_event_inbox_CampaignId_IdempotencyKey",
                table: "event_inbox");

            migrationBuilder.DropIndex(
                name: "IX_event_inbox_CampaignId_OrderId",
                table: "event_inbox");

            migrationBuilder.CreateIndex(
                name: "IX_rewards_CouponDueAt",
                table: "rewards",
                column: "CouponDueAt",
                filter: "\"CouponDueAt\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_referrals_Status_ApproveAfter",
                table: "referrals",
                columns: new[] { "Status", "ApproveAfter" },
                filter: "\"ApproveAfter\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_participants_MailPortalTokenHash",
                table: "participants",
                column: "MailPortalTokenHash",
                unique: true,
                filter: "\"MailPortalTokenHash\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants",
                column: "PortalTokenHash",
                unique: true,
                filter: "\"PortalTokenHash\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_events_CampaignId_IdempotencyKey",
                table: "events",
                columns: new[] { "CampaignId", "IdempotencyKey" },
                unique: true,
                filter: "\"IdempotencyKey\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_events_CampaignId_OrderId",
                table: "events",
                columns: new[] { "CampaignId", "OrderId" },
                unique: true,
                filter: "\"OrderId\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_CampaignId_IdempotencyKey",
                table: "event_inbox",
                columns: new[] { "CampaignId", "IdempotencyKey" },
                unique: true,
                filter: "\"IdempotencyKey\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_CampaignId_OrderId",
                table: "event_inbox",
                columns: new[] { "CampaignId", "OrderId" },
                unique: true,
                filter: "\"OrderId\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_rewards_CouponDueAt",
                table: "rewards");

            migrationBuilder.DropIndex(
                name: "IX_referrals_Status_ApproveAfter",
                table: "referrals");

            migrationBuilder.DropIndex(
                name: "IX_participants_MailPortalTokenHash",
                table: "participants");

            migrationBuilder.DropIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants");

            migrationBuilder.DropIndex(
                name: "IX_events_CampaignId_IdempotencyKey",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_events_CampaignId_OrderId",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_event_inbox_CampaignId_IdempotencyKey",
                table: "event_inbox");

            migrationBuilder.DropIndex(
                name: "IX_event_inbox_CampaignId_OrderId",
                table: "event_inbox");

            migrationBuilder.CreateIndex(
                name: "IX_rewards_CouponDueAt",
                table: "rewards",
                column: "CouponDueAt");

            migrationBuilder.CreateIndex(
                name: "IX_referrals_Status_ApproveAfter",
                table: "referrals",
                columns: new[] { "Status", "ApproveAfter" });

            migrationBuilder.CreateIndex(
                name: "IX_participants_MailPortalTokenHash",
                table: "participants",
                column: "MailPortalTokenHash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants",
                column: "PortalTokenHash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_events_CampaignId_IdempotencyKey",
                table: "events",
                columns: new[] { "CampaignId", "IdempotencyKey" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_events_CampaignId_OrderId",
                table: "events",
                columns: new[] { "CampaignId", "OrderId" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_CampaignId_IdempotencyKey",
                table: "event_inbox",
                columns: new[] { "CampaignId", "IdempotencyKey" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_CampaignId_OrderId",
                table: "event_inbox",
                columns: new[] { "CampaignId", "OrderId" },
                unique: true);
        }
    }
}
