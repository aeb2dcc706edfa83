using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Ed25519Signing : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "PreviousPrivateKey",
                table: "webhook_endpoints",
                type: "character varying(1024)",
                maxLength: 1024,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "PreviousPublicKey",
                table: "webhook_endpoints",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "PrivateKey",
                table: "webhook_endpoints",
                type: "character varying(1024)",
                maxLength: 1024,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "PublicKey",
                table: "webhook_endpoints",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Signing",
                table: "webhook_endpoints",
                type: "character varying(16)",
                maxLength: 16,
                nullable: false,
                defaultValue: "hmac");

            migrationBuilder.AddColumn<string>(
                name: "EndpointId",
                table: "outbox",
                type: "character varying(40)",
                maxLength: 40,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "data_protection_keys",
                columns: table => new
                {
                    Id = table.Column<int>(type: "integer", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    FriendlyName = table.Column<string>(type: "text", nullable: true),
                    Xml = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_data_protection_keys", x => x.Id);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "data_protection_keys");

            migrationBuilder.DropColumn(
                name: "PreviousPrivateKey",
                table: "webhook_endpoints");

            migrationBuilder.DropColumn(
                name: "PreviousPublicKey",
                table: "webhook_endpoints");

            migrationBuilder.DropColumn(
                name: "PrivateKey",
                table: "webhook_endpoints");

            migrationBuilder.DropColumn(
                name: "PublicKey",
                table: "webhook_endpoints");

            migrationBuilder.DropColumn(
                name: "Signing",
                table: "webhook_endpoints");

            migrationBuilder.DropColumn(
                name: "EndpointId",
                table: "outbox");
        }
    }
}
