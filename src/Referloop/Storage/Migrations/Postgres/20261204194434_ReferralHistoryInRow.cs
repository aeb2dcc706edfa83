using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class ReferralHistoryInRow : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "History",
                table: "referrals",
                type: "text",
                nullable: false,
                defaultValue: "[]");

            // Each referral takes its status changes, oldest first, as the JSON the model reads; times in UTC as the
            // application writes them, whatever the session's time zone.
            migrationBuilder.Sql("""
                UPDATE referrals SET "History" = h.history
                FROM (SELECT "ReferralId", json_agg(json_build_object(
                          'from', "From", 'to', "To", 'reason', "Reason",
                          'at', to_char("At" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')) ORDER BY "Id")::text AS history
                      FROM referral_history GROUP BY "ReferralId") AS h
                WHERE h."ReferralId" = referrals."Id";
                """);

            migrationBuilder.DropTable(
                name: "referral_history");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "History",
                table: "referrals");

            migrationBuilder.CreateTable(
                name: "referral_history",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    At = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    From = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: true),
                    Reason = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: false),
                    ReferralId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    To = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_referral_history", x => x.Id);
                    table.ForeignKey(
                        name: "FK_referral_history_referrals_ReferralId",
                        column: x => x.ReferralId,
                        principalTable: "referrals",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_referral_history_ReferralId_Id",
                table: "referral_history",
                columns: new[] { "ReferralId", "Id" });
        }
    }
}
