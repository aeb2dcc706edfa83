using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class RefundsAndChargebacks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<string>(
                name: "Status",
                table: "rewards",
                type: "character varying(24)",
                maxLength: 24,
                nullable: false,
                oldClrType: typeof(string),
                oldType: "character varying(16)",
                oldMaxLength: 16);

            migrationBuilder.AddColumn<string>(
                name: "RefundOf",
                table: "events",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Refunds",
                table: "campaigns",
                type: "character varying(32)",
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

            migrationBuilder.AlterColumn<string>(
                name: "Status",
                table: "rewards",
                type: "character varying(16)",
                maxLength: 16,
                nullable: false,
                oldClrType: typeof(string),
                oldType: "character varying(24)",
                oldMaxLength: 24);
        }
    }
}
