using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class ReferredAtCanonicalIps : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_participants_ReferredById_CreatedAt",
                table: "participants");

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "ReferredAt",
                table: "participants",
                type: "timestamp with time zone",
                nullable: true);

            // Until now a friend was referred when it was created.
            migrationBuilder.Sql("""UPDATE participants SET "ReferredAt" = "CreatedAt" WHERE "ReferredById" IS NOT NULL""");

            // Addresses are stored in one text per address from now on: an IPv4 client that a dual-stack socket reported
            // as IPv4-mapped IPv6 (::ffff:a.b.c.d) is a.b.c.d, as the shop's server reports it.
            foreach (var table in new[] { "clicks", "events", "event_inbox" })
            {
                migrationBuilder.Sql($"""
                    UPDATE {table} SET "Ip" = substr("Ip", 8)
                    WHERE lower("Ip") LIKE '::ffff:%.%' AND substr("Ip", 8) NOT LIKE '%:%'
                    """);
            }

            migrationBuilder.CreateIndex(
                name: "IX_participants_ReferredById_ReferredAt",
                table: "participants",
                columns: new[] { "ReferredById", "ReferredAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_participants_ReferredById_ReferredAt",
                table: "participants");

            migrationBuilder.DropColumn(
                name: "ReferredAt",
                table: "participants");

            migrationBuilder.CreateIndex(
                name: "IX_participants_ReferredById_CreatedAt",
                table: "participants",
                columns: new[] { "ReferredById", "CreatedAt" });
        }
    }
}
