using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class AttemptHeadersOriginsCouponOverlap : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "RequestHeaders",
                table: "webhook_attempts",
                type: "TEXT",
                maxLength: 8192,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "PreviousSecret",
                table: "coupon_pools",
                type: "TEXT",
                maxLength: 100,
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "PreviousSecretExpiresAt",
                table: "coupon_pools",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "SocialProof",
                table: "campaigns",
                type: "TEXT",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "RequestHeaders",
                table: "webhook_attempts");

            migrationBuilder.DropColumn(
                name: "PreviousSecret",
                table: "coupon_pools");

            migrationBuilder.DropColumn(
                name: "PreviousSecretExpiresAt",
                table: "coupon_pools");

            migrationBuilder.DropColumn(
                name: "SocialProof",
                table: "campaigns");
        }
    }
}
