module distri-examples

go 1.19

require distri v0.0.0

replace distri => ../../bindings/go
