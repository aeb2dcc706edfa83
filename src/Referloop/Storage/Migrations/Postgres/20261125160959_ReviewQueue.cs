using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class ReviewQueue : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "FlaggedAt",
                table: "referrals",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "FraudDecision",
                table: "referrals",
                type: "character varying(16)",
                maxLength: 16,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "RiskScore",
                table: "referrals",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "RiskChangedAt",
                table: "participants",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "RiskLevel",
                table: "participants",
                type: "character varying(8)",
                maxLength: 8,
                nullable: false,
                defaultValue: "low");

            migrationBuilder.AddColumn<string>(
                name: "RiskReasons",
                table: "participants",
                type: "text",
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
