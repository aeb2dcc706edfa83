using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Email : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "EmailOptedOutAt",
                table: "participants",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "MailPortalTokenHash",
                table: "participants",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Email",
                table: "campaigns",
                type: "text",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "email_sends",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    CampaignId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    ParticipantId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    MessageId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: true),
                    RewardId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: true),
                    To = table.Column<string>(type: "character varying(254)", maxLength: 254, nullable: false),
                    Subject = table.Column<string>(type: "character varying(300)", maxLength: 300, nullable: true),
                    Status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    Attempts = table.Column<int>(type: "integer", nullable: false),
                    LastError = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: true),
                    NextAttemptAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ClaimedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    ClaimedUntil = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    SentAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
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
