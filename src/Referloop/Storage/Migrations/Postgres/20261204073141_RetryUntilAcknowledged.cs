using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class RetryUntilAcknowledged : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "RetryUntilAcknowledged",
                table: "webhook_endpoints",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            // seeds/002: endpoints that already receive referral.approved (every type, or it by name) retry it until acknowledged.
            migrationBuilder.Sql("""
                UPDATE webhook_endpoints SET "RetryUntilAcknowledged" = TRUE
                WHERE "EventTypes" = '[]' OR "EventTypes" LIKE '%"referral.approved"%'
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "RetryUntilAcknowledged",
                table: "webhook_endpoints");
        }
    }
}
