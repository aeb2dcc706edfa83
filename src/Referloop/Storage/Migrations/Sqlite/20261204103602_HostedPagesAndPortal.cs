using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class HostedPagesAndPortal : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "PortalTokenHash",
                table: "participants",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Page",
                table: "campaigns",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Slug",
                table: "campaigns",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants",
                column: "PortalTokenHash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_campaigns_Slug",
                table: "campaigns",
                column: "Slug",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_participants_PortalTokenHash",
                table: "participants");

            migrationBuilder.DropIndex(
                name: "IX_campaigns_Slug",
                table: "campaigns");

            migrationBuilder.DropColumn(
                name: "PortalTokenHash",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "Page",
                table: "campaigns");

            migrationBuilder.DropColumn(
                name: "Slug",
                table: "campaigns");
        }
    }
}
