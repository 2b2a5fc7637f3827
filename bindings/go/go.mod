module distri

go 1.19
