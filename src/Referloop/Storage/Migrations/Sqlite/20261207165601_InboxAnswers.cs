using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class InboxAnswers : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_event_inbox_ReceivedAt",
                table: "event_inbox");

            migrationBuilder.AddColumn<string>(
                name: "Answer",
                table: "event_inbox",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_ReceivedAt",
                table: "event_inbox",
                column: "ReceivedAt",
                filter: "\"Answer\" IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_event_inbox_ReceivedAt",
                table: "event_inbox");

            migrationBuilder.DropColumn(
                name: "Answer",
                table: "event_inbox");

            migrationBuilder.CreateIndex(
                name: "IX_event_inbox_ReceivedAt",
                table: "event_inbox",
                column: "ReceivedAt");
        }
    }
}
