using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class EventInboxRefundsHostedPages : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "PortalTokenHash",
                table: "participants",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "RefundOf",
                table: "events",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Page",
                table: "campaigns",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Refunds",
                table: "campaigns",
                type: "TEXT",
                maxLength: 32,
                nullable: false,
                defaultValue: "keep_if_other_purchases");

            migrationBuilder.AddColumn<string>(
                name: "Slug",
                table: "campaigns",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "event_inbox",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    CampaignId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    OrderId = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    IdempotencyKey = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    Source = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Ip = table.Column<string>(type: "TEXT", maxLength: 45, nullable: true),
                    UserAgent = table.Column<string>(type: "TEXT", maxLength: 512, nullable: true),
                    Request = table.Column<string>(type: "TEXT", nullable: false),
                    ReceivedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_event_inbox", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants",
                column: "PortalTokenHash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_events_CampaignId_RefundOf",
                table: "events",
                columns: new[] { "CampaignId", "RefundOf" },
                unique: true,
                filter: "\"RefundOf\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_campaigns_Slug",
                table: "campaigns",
                column: "Slug",
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

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_ReceivedAt",
                table: "event_inbox",
                column: "ReceivedAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "event_inbox");

            migrationBuilder.DropIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants");

            migrationBuilder.DropIndex(
                name: "IX_events_CampaignId_RefundOf",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_campaigns_Slug",
                table: "campaigns");

            migrationBuilder.DropColumn(
                name: "PortalTokenHash",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "RefundOf",
                table: "events");

            migrationBuilder.DropColumn(
                name: "Page",
                table: "campaigns");

            migrationBuilder.DropColumn(
                name: "Refunds",
                table: "campaigns");

            migrationBuilder.DropColumn(
                name: "Slug",
                table: "campaigns");
        }
    }
}
