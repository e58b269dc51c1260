# fetchd's image: built from source on Debian 12, run as the unprivileged user fetchd with
# nothing but the binary and its runtime libraries.
# - build stage: installs exactly scripts/debian-packages.txt (scripts/deps.sh, what
#   `make deps` installs, so the two cannot drift) and builds the Debian package
#   (`make package`, whose Depends dpkg-shlibdeps computes from the binary);
# - runtime stage: installs that .deb, which pulls in those libraries and nothing else.
#
#   docker build -t fetchd .
#   docker run --rm -p 8000:8000 -v fetchd-data:/var/lib/fetchd fetchd
#   docker compose up --build        (docker-compose.yml: the scale-out topology)
FROM debian:bookworm AS build
WORKDIR /src
# The package lists first, so that the dependency layer is rebuilt only when they change.
COPY scripts/deps.sh scripts/debian-packages.txt scripts/
COPY package.json package-lock.json ./
RUN scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make package && cp build/fetchd_*.deb /tmp/fetchd.deb

FROM debian:bookworm
COPY --from=build /tmp/fetchd.deb /tmp/fetchd.deb
# ca-certificates: the package Recommends it (https fetches need it; it is not linked).
# The package's postinst creates the user fetchd (useradd: there is no systemd here).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       /tmp/fetchd.deb ca-certificates \
    && rm -rf /var/lib/apt/lists/* /tmp/fetchd.deb \
    && install -d -o fetchd -g fetchd -m 0750 /var/lib/fetchd
USER fetchd
WORKDIR /var/lib/fetchd
# Reachable from outside the container; the SQLite database in the volume.
ENV FETCHD_LISTEN=0.0.0.0:8000 \
    FETCHD_DB=sqlite:///var/lib/fetchd/fetchd.db
EXPOSE 8000
VOLUME ["/var/lib/fetchd"]
ENTRYPOINT ["/usr/bin/fetchd"]
CMD ["serve"]
