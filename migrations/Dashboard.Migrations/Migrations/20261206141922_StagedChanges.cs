using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Dashboard.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class StagedChanges : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "StageCommand",
                table: "ChangeRequests",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "StageExpiresAt",
                table: "ChangeRequests",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "StageOutcome",
                table: "ChangeRequests",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "StagedAt",
                table: "ChangeRequests",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "StagedByName",
                table: "ChangeRequests",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "UnstagedAt",
                table: "ChangeRequests",
                type: "INTEGER",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "StageCommand",
                table: "ChangeRequests");

            migrationBuilder.DropColumn(
                name: "StageExpiresAt",
                table: "ChangeRequests");

            migrationBuilder.DropColumn(
                name: "StageOutcome",
                table: "ChangeRequests");

            migrationBuilder.DropColumn(
                name: "StagedAt",
                table: "ChangeRequests");

            migrationBuilder.DropColumn(
                name: "StagedByName",
                table: "ChangeRequests");

            migrationBuilder.DropColumn(
                name: "UnstagedAt",
                table: "ChangeRequests");
        }
    }
}
