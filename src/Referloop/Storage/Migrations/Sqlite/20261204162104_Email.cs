using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Email : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "EmailOptedOutAt",
                table: "participants",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "MailPortalTokenHash",
                table: "participants",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Email",
                table: "campaigns",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "email_sends",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    CampaignId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    ParticipantId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    MessageId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: true),
                    RewardId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: true),
                    To = table.Column<string>(type: "TEXT", maxLength: 254, nullable: false),
                    Subject = table.Column<string>(type: "TEXT", maxLength: 300, nullable: true),
                    Status = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Attempts = table.Column<int>(type: "INTEGER", nullable: false),
                    LastError = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    NextAttemptAt = table.Column<long>(type: "INTEGER", nullable: false),
                    ClaimedBy = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    ClaimedUntil = table.Column<long>(type: "INTEGER", nullable: true),
                    SentAt = table.Column<long>(type: "INTEGER", nullable: true),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_email_sends", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_participants_MailPortalTokenHash",
                table: "participants",
                column: "MailPortalTokenHash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_email_sends_ParticipantId",
                table: "email_sends",
                column: "ParticipantId");

            migrationBuilder.CreateIndex(
                name: "IX_email_sends_pending",
                table: "email_sends",
                column: "NextAttemptAt",
                filter: "\"Status\" = 'pending'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "email_sends");

            migrationBuilder.DropIndex(
                name: "IX_participants_MailPortalTokenHash",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "EmailOptedOutAt",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "MailPortalTokenHash",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "Email",
                table: "campaigns");
        }
    }
}
