# fish completion for quired(1): its options, their values, and
# directories for the DIR arguments.

complete -c quired -f -a '(__fish_complete_directories)'
complete -c quired -s h -l help -d 'Show the help'
complete -c quired -s V -l version -d 'Show the version'
complete -c quired -l db -r -F -d Database
complete -c quired -l config -r -F -d 'Config file'
complete -c quired -s n -l namespace -x -d 'Namespace of the DIR arguments'
complete -c quired -l backend -x -a 'inotify fs-event' -d 'How changes are watched'
complete -c quired -l indexer-priority -x -a 'idle normal' -d 'CPU and I/O priority of the indexer thread'
complete -c quired -l settle -x -d 'Index a note once it has been quiet this long (ms)'
complete -c quired -l max-delay -x -d 'Never wait longer than this for a busy note (ms)'
complete -c quired -l max-file-size -x -d 'Skip larger files (K, M, G suffixes, at most 1G)'
complete -c quired -s v -l verbose -d 'Also log debugging detail'
complete -c quired -s q -l quiet -d 'Log only warnings and errors'
