#!/usr/bin/env bash
# Adds a migration for both providers: ./add-migration.sh AddWebhooks
set -euo pipefail
name=${1:?usage: ./add-migration.sh MigrationName}
cd "$(dirname "$0")"
dotnet tool restore >/dev/null
dotnet ef migrations add "$name" --project src/Referloop --context SqliteReferloopDb --output-dir Storage/Migrations/Sqlite
dotnet ef migrations add "$name" --project src/Referloop --context PostgresReferloopDb --output-dir Storage/Migrations/Postgres
