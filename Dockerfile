# Multi-stage image: SDK build, then the ASP.NET runtime with the host tools the collector runs.
# Built and run in this project's CI from local stand-ins for the two base images (scripts/image.sh; README "Container image").
FROM mcr.microsoft.com/dotnet/sdk:10.0-bookworm-slim AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/ src/
COPY migrations/ migrations/
COPY wwwroot/ wwwroot/
RUN dotnet publish src/Dashboard.Web/Dashboard.Web.csproj -c Release -o /app --nologo

FROM mcr.microsoft.com/dotnet/aspnet:10.0-bookworm-slim
# iptables/nftables read and change the host firewall, tcpdump captures, iproute2 lists links,
# util-linux provides nsenter to list interfaces inside container network namespaces.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables tcpdump iproute2 util-linux procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# First start shows /setup to create the administrator; for unattended installs pass
# -e Auth__AdminPassword=... (and -e Auth__AdminToken=nlt_... for scripts) to docker run instead.
ENV ASPNETCORE_URLS=http://127.0.0.1:5000 \
    Data__Directory=/data
VOLUME /data
EXPOSE 5000
ENTRYPOINT ["dotnet", "Dashboard.Web.dll"]
