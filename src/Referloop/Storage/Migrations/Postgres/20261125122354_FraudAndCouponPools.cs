using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Referloop.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class FraudAndCouponPools : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "coupon_pools",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    CampaignId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Name = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    CreateCouponUrl = table.Column<string>(type: "character varying(2048)", maxLength: 2048, nullable: true),
                    Secret = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_coupon_pools", x => x.Id);
                    table.ForeignKey(
                        name: "FK_coupon_pools_campaigns_CampaignId",
                        column: x => x.CampaignId,
                        principalTable: "campaigns",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "participant_ips",
                columns: table => new
                {
                    ParticipantId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Ip = table.Column<string>(type: "character varying(45)", maxLength: 45, nullable: false),
                    FirstSeenAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    LastSeenAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_participant_ips", x => new { x.ParticipantId, x.Ip });
                    table.ForeignKey(
                        name: "FK_participant_ips_participants_ParticipantId",
                        column: x => x.ParticipantId,
                        principalTable: "participants",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "coupons",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    PoolId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Code = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Source = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    AllocatedToRewardId = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    AllocatedToParticipantId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: true),
                    AllocatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_coupons", x => x.Id);
                    table.ForeignKey(
                        name: "FK_coupons_coupon_pools_PoolId",
                        column: x => x.PoolId,
                        principalTable: "coupon_pools",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_participants_ReferredById_CreatedAt",
                table: "participants",
                columns: new[] { "ReferredById", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_coupon_pools_CampaignId_Name",
                table: "coupon_pools",
                columns: new[] { "CampaignId", "Name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_coupons_AllocatedToParticipantId",
                table: "coupons",
                column: "AllocatedToParticipantId");

            migrationBuilder.CreateIndex(
                name: "IX_coupons_AllocatedToRewardId",
                table: "coupons",
                column: "AllocatedToRewardId",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_coupons_PoolId_AllocatedToRewardId_Id",
                table: "coupons",
                columns: new[] { "PoolId", "AllocatedToRewardId", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_coupons_PoolId_Code",
                table: "coupons",
                columns: new[] { "PoolId", "Code" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "coupons");

            migrationBuilder.DropTable(
                name: "participant_ips");

            migrationBuilder.DropTable(
                name: "coupon_pools");

            migrationBuilder.DropIndex(
                name: "IX_participants_ReferredById_CreatedAt",
                table: "participants");
        }
    }
}
