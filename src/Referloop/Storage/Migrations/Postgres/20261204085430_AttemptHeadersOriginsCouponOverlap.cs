using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
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
                type: "character varying(8192)",
                maxLength: 8192,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "PreviousSecret",
                table: "coupon_pools",
                type: "character varying(100)",
                maxLength: 100,
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "PreviousSecretExpiresAt",
                table: "coupon_pools",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "SocialProof",
                table: "campaigns",
                type: "text",
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
