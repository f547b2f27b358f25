module docker-socket-operator/bench/loadgen

go 1.22
