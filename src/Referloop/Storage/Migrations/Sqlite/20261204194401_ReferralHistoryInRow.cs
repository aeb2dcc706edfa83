using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
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
                type: "TEXT",
                nullable: false,
                defaultValue: "[]");

            // Each referral takes its status changes, oldest first, as the JSON the model reads ("At" is stored as UTC ticks).
            migrationBuilder.Sql("""
                UPDATE referrals SET "History" = (
                    SELECT json_group_array(json_object(
                        'from', h."From", 'to', h."To", 'reason', h."Reason",
                        'at', strftime('%Y-%m-%dT%H:%M:%S', (h."At" - 621355968000000000) / 10000000, 'unixepoch')
                            || printf('.%07d+00:00', h."At" % 10000000)))
                    FROM (SELECT * FROM referral_history WHERE "ReferralId" = referrals."Id" ORDER BY "Id") AS h)
                WHERE EXISTS (SELECT 1 FROM referral_history WHERE "ReferralId" = referrals."Id");
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
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false),
                    From = table.Column<string>(type: "TEXT", maxLength: 16, nullable: true),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: false),
                    ReferralId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    To = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false)
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
