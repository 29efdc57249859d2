"""Starting processes: the zygote that forks monitors (the gRPC daemon never forks), the init
and exec spawners, exec preparation, pre-warmed imports and process names."""
