#!/usr/bin/env bash
# Records the pcaps next to this script (kept as fixtures): the seed's docker-user variant on Docker's own bridges,
# with the bridge chatter a fresh host makes: an IGMP report from net1's gateway (a socket joins a group on it), an
# mDNS query from the gateway, the bridges' own MLD/ND, and ARP. Run as root on a lab host (scripts/lab-setup.sh).
# Lab traffic stays on the two bridges; the ACCEPT rules carry the tag netlab:fixture and are removed on exit.
set -euo pipefail
cd "$(dirname "$0")"
tag=netlab:fixture
n1=nlfix-net1 n2=nlfix-net2
cleanup() {
  docker rm -f nlfix-c1 nlfix-c2 >/dev/null 2>&1 || true
  docker network rm $n1 $n2 >/dev/null 2>&1 || true
  while iptables -w -D DOCKER-USER -s 172.29.2.0/24 -d 172.29.1.0/24 -m comment --comment $tag -j ACCEPT 2>/dev/null; do :; done
  while iptables -w -D DOCKER-USER -s 172.29.1.0/24 -d 172.29.2.0/24 -m comment --comment $tag -j ACCEPT 2>/dev/null; do :; done
  kill "${pids[@]}" 2>/dev/null || true
}
pids=()
trap cleanup EXIT
ip route replace blackhole 172.16.0.0/12
ip route replace blackhole 192.168.0.0/16
docker network create --subnet 172.29.1.0/24 --gateway 172.29.1.1 $n1 >/dev/null
docker network create --subnet 172.29.2.0/24 --gateway 172.29.2.1 $n2 >/dev/null
b1=br-$(docker network inspect -f '{{.Id}}' $n1 | cut -c1-12)
b2=br-$(docker network inspect -f '{{.Id}}' $n2 | cut -c1-12)
docker run -d --name nlfix-c1 --network $n1 --ip 172.29.1.2 busybox:latest sleep 60 >/dev/null
docker run -d --name nlfix-c2 --network $n2 --ip 172.29.2.2 busybox:latest sleep 60 >/dev/null
iptables -w -I DOCKER-USER 1 -s 172.29.2.0/24 -d 172.29.1.0/24 -m comment --comment $tag -j ACCEPT
iptables -w -I DOCKER-USER 1 -s 172.29.1.0/24 -d 172.29.2.0/24 -m comment --comment $tag -j ACCEPT
tcpdump -i "$b1" -w seed-docker-user-net1.pcap -U -n 2>/dev/null & pids+=($!)
tcpdump -i "$b2" -w seed-docker-user-net2.pcap -U -n 2>/dev/null & pids+=($!)
sleep 1
# The host joins a multicast group on net1's gateway: the kernel sends an IGMP membership report from 172.29.1.1.
python3 - <<'PY' &
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("239.255.77.1"), socket.inet_aton("172.29.1.1")))
m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("172.29.1.1"))
m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
m.bind(("172.29.1.1", 5353))
m.sendto(bytes.fromhex("000000000001000000000000046c616273056c6f63616c0000010001"), ("224.0.0.251", 5353))
time.sleep(4)
PY
pids+=($!)
docker exec nlfix-c2 ping -c 3 -W 1 172.29.1.2
sleep 2
kill "${pids[0]}" "${pids[1]}"
wait "${pids[0]}" "${pids[1]}" 2>/dev/null || true
echo "bridges: net1=$b1 net2=$b2"
