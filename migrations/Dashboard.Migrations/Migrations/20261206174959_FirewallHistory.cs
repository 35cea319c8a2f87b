using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Dashboard.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class FirewallHistory : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "FirewallChanges",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Host = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false),
                    RecordedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    Family = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Table = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Chain = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    RuleKey = table.Column<string>(type: "TEXT", nullable: true),
                    RuleText = table.Column<string>(type: "TEXT", nullable: true),
                    Owner = table.Column<string>(type: "TEXT", maxLength: 16, nullable: true),
                    Comment = table.Column<string>(type: "TEXT", maxLength: 512, nullable: true),
                    PositionBefore = table.Column<int>(type: "INTEGER", nullable: true),
                    PositionAfter = table.Column<int>(type: "INTEGER", nullable: true),
                    PolicyBefore = table.Column<string>(type: "TEXT", maxLength: 32, nullable: true),
                    PolicyAfter = table.Column<string>(type: "TEXT", maxLength: 32, nullable: true),
                    Cause = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    CauseDetail = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_FirewallChanges", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "FirewallCheckpoints",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Host = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false),
                    RuleCount = table.Column<int>(type: "INTEGER", nullable: false),
                    Shape = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_FirewallCheckpoints", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_FirewallChanges_Host_At",
                table: "FirewallChanges",
                columns: new[] { "Host", "At" });

            migrationBuilder.CreateIndex(
                name: "IX_FirewallChanges_Host_Cause_At",
                table: "FirewallChanges",
                columns: new[] { "Host", "Cause", "At" });

            migrationBuilder.CreateIndex(
                name: "IX_FirewallCheckpoints_Host_At",
                table: "FirewallCheckpoints",
                columns: new[] { "Host", "At" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "FirewallChanges");

            migrationBuilder.DropTable(
                name: "FirewallCheckpoints");
        }
    }
}
