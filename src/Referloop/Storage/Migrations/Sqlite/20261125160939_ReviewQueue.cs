using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ReviewQueue : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "FlaggedAt",
                table: "referrals",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "FraudDecision",
                table: "referrals",
                type: "TEXT",
                maxLength: 16,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "RiskScore",
                table: "referrals",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<long>(
                name: "RiskChangedAt",
                table: "participants",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "RiskLevel",
                table: "participants",
                type: "TEXT",
                maxLength: 8,
                nullable: false,
                defaultValue: "low");

            migrationBuilder.AddColumn<string>(
                name: "RiskReasons",
                table: "participants",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_referrals_Status_FlaggedAt_Id",
                table: "referrals",
                columns: new[] { "Status", "FlaggedAt", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_referrals_Status_FlaggedAt_Id",
                table: "referrals");

            migrationBuilder.DropColumn(
                name: "FlaggedAt",
                table: "referrals");

            migrationBuilder.DropColumn(
                name: "FraudDecision",
                table: "referrals");

            migrationBuilder.DropColumn(
                name: "RiskScore",
                table: "referrals");

            migrationBuilder.DropColumn(
                name: "RiskChangedAt",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "RiskLevel",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "RiskReasons",
                table: "participants");
        }
    }
}
