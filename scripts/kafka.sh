#!/usr/bin/env bash
# One Apache Kafka node on this machine, for weir's Kafka tests and for trying weir with
# Kafka: a single KRaft process (broker and controller) on 127.0.0.1, run from the jars
# Maven fetches for scripts/kafka/pom.xml, with Kafka's own command-line tools.
#
#   scripts/kafka.sh start [DIR] [--port P] [--topics NAME:PARTITIONS,...] [--owner PID]
#                                        format DIR (default /tmp/weir-kafka) afresh, start a
#                                        node on port P (default: a free one), wait until it
#                                        answers, create the topics, print one line
#                                        `bootstrap=127.0.0.1:PORT pid=PID dir=DIR`; with
#                                        --owner, the node stops when process PID ends
#   scripts/kafka.sh stop [DIR]          stop the node of DIR
#   scripts/kafka.sh tool NAME ARGS...   run one of Kafka's tools (kafka-topics,
#                                        kafka-console-producer, kafka-console-consumer,
#                                        kafka-consumer-groups, kafka-transactions,
#                                        kafka-get-offsets); `--bootstrap-server` is added
#                                        from $KAFKA_DIR (default /tmp/weir-kafka) unless given
#   scripts/kafka.sh classpath           fetch the jars (once) and print the classpath
#
# The jars are fetched once into the machine's Maven cache (~/.m2); the resolved classpath
# is kept in ${XDG_CACHE_HOME:-~/.cache}/weir/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pom="$here/kafka/pom.xml"
default_dir="${KAFKA_DIR:-${TMPDIR:-/tmp}/weir-kafka}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/weir"

die() { echo "kafka.sh: $*" >&2; exit 1; }

classpath() {
    local key cp_file
    key="$(sha256sum "$pom" | cut -c1-16)"
    cp_file="$cache/kafka-classpath-$key"
    if [[ ! -s "$cp_file" ]] || ! classpath_present "$cp_file"; then
        command -v mvn >/dev/null || die "mvn is needed to fetch Kafka's jars"
        mkdir -p "$cache"
        mvn -q -B -Dstyle.color=never -f "$pom" dependency:build-classpath \
            -Dmdep.includeScope=runtime -Dmdep.outputFile="$cp_file.tmp" >&2 \
            || die "Maven could not fetch Kafka's jars (see above)"
        mv "$cp_file.tmp" "$cp_file"
    fi
    cat "$cp_file"
}

# Every jar of a cached classpath still exists (a cleaned ~/.m2 fetches again).
classpath_present() {
    local jar
    local IFS=:
    for jar in $(cat "$1"); do
        [[ -f "$jar" ]] || return 1
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

java_run() {
    local heap="$1"; shift
    local cp
    cp="$(classpath)"
    exec java "-Xmx$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/kafka/log4j2-tools.properties" \
        -cp "$cp" "$@"
}

start() {
    local dir="$default_dir" owner="" port="" topics=""
    while (($#)); do
        case "$1" in
            --owner) owner="${2:?--owner needs a PID}"; shift 2 ;;
            --port) port="${2:?--port needs a number}"; shift 2 ;;
            --topics) topics="${2:?--topics needs NAME:PARTITIONS,...}"; shift 2 ;;
            *) dir="$1"; shift ;;
        esac
    done
    command -v java >/dev/null || die "java (17 or newer) is needed to run Kafka"
    if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        die "a node already runs on $dir (pid $(cat "$dir/pid")); stop it first"
    fi
    local cp cport id
    cp="$(classpath)"
    rm -rf "$dir"
    mkdir -p "$dir/logs"
    dir="$(cd "$dir" && pwd)"
    [[ -n "$port" ]] || port="$(free_port)"
    cport="$(free_port)"
    while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
log.flush.interval.messages=9223372036854775807
PROPS
    id="$(java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$cp" \
        -Dlog4j2.configurationFile="$here/kafka/log4j2-tools.properties" \
        kafka.tools.StorageTool random-uuid)"
    java -Xmx256m -XX:TieredStopAtLevel=1 -cp "$cp" \
        -Dlog4j2.configurationFile="$here/kafka/log4j2-tools.properties" \
        kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 \
        || { cat "$dir/logs/format.log" >&2; die "formatting $dir failed"; }
    KAFKA_LOG_DIR="$dir/logs" nohup java -Xms256m -Xmx768m -XX:+UseG1GC \
        -Djava.awt.headless=true -Dkafka.logs.dir="$dir/logs" \
        -Dlog4j2.configurationFile="$here/kafka/log4j2-server.properties" \
        -cp "$cp" kafka.Kafka "$dir/server.properties" \
        >"$dir/logs/stdout.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/pid"
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    local waited=0
    until grep -q "Kafka Server started" "$dir/logs/server.log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -40 "$dir/logs/stdout.log" "$dir/logs/server.log" >&2 2>/dev/null || true
            die "the node exited while starting (logs in $dir/logs)"
        fi
        if ((waited >= 1200)); then
            kill "$pid" 2>/dev/null || true
            die "the node did not start within 120 s (logs in $dir/logs)"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    local spec
    for spec in ${topics//,/ }; do
        KAFKA_DIR="$dir" "$0" tool kafka-topics --create --if-not-exists \
            --topic "${spec%%:*}" --partitions "${spec##*:}" --replication-factor 1 >/dev/null \
            || die "creating topic $spec failed"
    done
    if [[ -n "$owner" ]]; then
        # A watcher that stops the node once its owner (a test process) is gone.
        nohup bash -c "while kill -0 $owner 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done; \
            kill $pid 2>/dev/null; sleep 10; kill -9 $pid 2>/dev/null" >/dev/null 2>&1 </dev/null &
    fi
    echo "bootstrap=127.0.0.1:$port pid=$pid dir=$dir"
}

stop() {
    local dir="${1:-$default_dir}"
    [[ -f "$dir/pid" ]] || die "no node was started on $dir"
    local pid
    pid="$(cat "$dir/pid")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid"
}

tool() {
    (($#)) || die "tool needs a NAME"
    local name="$1"; shift
    local main
    case "$name" in
        kafka-topics) main=org.apache.kafka.tools.TopicCommand ;;
        kafka-console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
        kafka-console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
        kafka-consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
        kafka-transactions) main=org.apache.kafka.tools.TransactionsCommand ;;
        kafka-get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
        *) die "unknown tool $name" ;;
    esac
    local args=("$@")
    if [[ " ${args[*]} " != *" --bootstrap-server "* ]]; then
        [[ -f "$default_dir/bootstrap" ]] || die "no node on $default_dir: start one or pass --bootstrap-server"
        args=(--bootstrap-server "$(cat "$default_dir/bootstrap")" "${args[@]}")
    fi
    java_run 256m "$main" "${args[@]}"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    tool) shift; tool "$@" ;;
    classpath) classpath ;;
    *) die "usage: kafka.sh start [DIR] | stop [DIR] | tool NAME ARGS... | classpath" ;;
esac
