using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class RefundsAndChargebacks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "RefundOf",
                table: "events",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Refunds",
                table: "campaigns",
                type: "TEXT",
                maxLength: 32,
                nullable: false,
                defaultValue: "keep_if_other_purchases");

            migrationBuilder.CreateIndex(
                name: "IX_events_CampaignId_RefundOf",
                table: "events",
                columns: new[] { "CampaignId", "RefundOf" },
                unique: true,
                filter: "\"RefundOf\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_events_CampaignId_RefundOf",
                table: "events");

            migrationBuilder.DropColumn(
                name: "RefundOf",
                table: "events");

            migrationBuilder.DropColumn(
                name: "Refunds",
                table: "campaigns");
        }
    }
}
