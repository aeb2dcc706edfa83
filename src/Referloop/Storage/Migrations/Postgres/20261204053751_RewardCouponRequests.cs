using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class RewardCouponRequests : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "CouponAttempts",
                table: "rewards",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "CouponDueAt",
                table: "rewards",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "PendingReason",
                table: "rewards",
                type: "character varying(32)",
                maxLength: 32,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_rewards_CouponDueAt",
                table: "rewards",
                column: "CouponDueAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_rewards_CouponDueAt",
                table: "rewards");

            migrationBuilder.DropColumn(
                name: "CouponAttempts",
                table: "rewards");

            migrationBuilder.DropColumn(
                name: "CouponDueAt",
                table: "rewards");

            migrationBuilder.DropColumn(
                name: "PendingReason",
                table: "rewards");
        }
    }
}
