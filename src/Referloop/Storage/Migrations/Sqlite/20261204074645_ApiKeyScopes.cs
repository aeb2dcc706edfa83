using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ApiKeyScopes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Scope",
                table: "api_keys",
                type: "TEXT",
                maxLength: 16,
                nullable: false,
                defaultValue: "full");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Scope",
                table: "api_keys");
        }
    }
}
