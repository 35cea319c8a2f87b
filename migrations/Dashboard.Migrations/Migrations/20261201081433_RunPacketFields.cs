using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Dashboard.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class RunPacketFields : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "Decoded",
                table: "RunPackets",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<int>(
                name: "DestinationPort",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "EtherType",
                table: "RunPackets",
                type: "INTEGER",
                nullable: false,
                defaultValue: -1);

            migrationBuilder.AddColumn<int>(
                name: "IcmpCode",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "IcmpId",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "IcmpSequence",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "IcmpType",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "IpProtocol",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "SourcePort",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "TcpFlags",
                table: "RunPackets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_RunPackets_Decoded",
                table: "RunPackets",
                column: "Decoded");

            // Timestamps move from EF's DateTimeOffset binary form ((local ticks / 1000) << 11 | offset minutes, 0.1 ms)
            // to UTC ticks: ticks = (v >> 11) * 1000, less the sign-extended 11-bit offset in minutes.
            migrationBuilder.Sql("""
                UPDATE "RunPackets" SET "Timestamp" =
                    ("Timestamp" >> 11) * 1000
                    - (CASE WHEN ("Timestamp" & 1024) <> 0 THEN ("Timestamp" & 2047) - 2048 ELSE ("Timestamp" & 2047) END) * 600000000;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            // Back to EF's binary form, as UTC (offset 0); microseconds below 0.1 ms are lost, as they were before.
            migrationBuilder.Sql("""
                UPDATE "RunPackets" SET "Timestamp" = ("Timestamp" / 1000) << 11;
                """);

            migrationBuilder.DropIndex(
                name: "IX_RunPackets_Decoded",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "Decoded",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "DestinationPort",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "EtherType",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "IcmpCode",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "IcmpId",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "IcmpSequence",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "IcmpType",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "IpProtocol",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "SourcePort",
                table: "RunPackets");

            migrationBuilder.DropColumn(
                name: "TcpFlags",
                table: "RunPackets");
        }
    }
}
