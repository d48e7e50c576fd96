# fish completion for quire(1): commands, their options, option values,
# paths, and namespaces from 'quire status --json'.

set -l commands index search status links backlinks repair help

# The namespaces of the database named on the command line (--db).
function __quire_namespaces
    set -l tokens (commandline -opc)
    set -l db
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --db
                set db $tokens[(math $i + 1)]
            case '--db=*'
                set db (string replace -- --db= '' $tokens[$i])
        end
    end
    set -l args status --json
    if test -n "$db"
        set args status --db $db --json
    end
    # Only namespace objects have a "name" key.
    QUIRE_LOCK_TIMEOUT_MS=1000 command quire $args 2>/dev/null |
        string match -ar '"name":"[^"\\\\]*"' |
        string replace -r '^"name":"(.*)"$' '$1'
end

# Directories, and the files with a note's extension, that complete the
# token under the cursor (__fish_complete_suffix would offer every file).
function __quire_notes
    set -l token (commandline -ct)
    set -l home_token (string replace -r '^~(?=/|$)' -- $HOME $token)
    for path in $home_token*
        set -l shown (string replace -- $home_token $token $path)
        if test -d $path
            printf '%s/\n' $shown
        else if string match -qir '\.(md|markdown|mdown|mkd|mkdn)$' -- $path
            printf '%s\n' $shown
        end
    end
end

complete -c quire -f
complete -c quire -n "not __fish_seen_subcommand_from $commands" -s h -l help -d 'Show the commands'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -s V -l version -d 'Show the version'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a index -d 'Index (or re-index) notes under each PATH'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a search -d 'Search the index, best hits first'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a status -d 'What the index holds'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a links -d 'The links going out of a note'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a backlinks -d 'The notes that link to a note'
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a repair -d "Rebuild a damaged database's indexes from its rows"
complete -c quire -n "not __fish_seen_subcommand_from $commands" -a help -d 'Show the commands'

# Every command
set -l with_db index search status links backlinks repair
complete -c quire -n "__fish_seen_subcommand_from $with_db" -l db -r -F -d 'Database (default: $QUIRE_DB or the XDG data dir)'
complete -c quire -n "__fish_seen_subcommand_from $with_db" -s h -l help -d 'Show the help'

# index
complete -c quire -n '__fish_seen_subcommand_from index' -s n -l namespace -x -a '(__quire_namespaces)' -d 'Namespace of these notes'
complete -c quire -n '__fish_seen_subcommand_from index' -s j -l jobs -x -d 'Reader threads (1-64)'
complete -c quire -n '__fish_seen_subcommand_from index' -l max-file-size -x -d 'Skip larger files (K, M, G suffixes)'
complete -c quire -n '__fish_seen_subcommand_from index' -l summary -d 'Print skip counts by reason'
complete -c quire -n '__fish_seen_subcommand_from index' -F

# search
complete -c quire -n '__fish_seen_subcommand_from search' -s n -l namespace -x -a '(__quire_namespaces)' -d 'Only hits from this namespace'
complete -c quire -n '__fish_seen_subcommand_from search' -l path -x -d 'Only hits in files whose path matches GLOB'
complete -c quire -n '__fish_seen_subcommand_from search' -l heading -x -d 'Only hits under a heading that contains TEXT'
complete -c quire -n '__fish_seen_subcommand_from search' -l tag -x -d 'Only hits in notes with this tag'
complete -c quire -n '__fish_seen_subcommand_from search' -s l -l limit -x -d 'At most N hits (default 10)'
complete -c quire -n '__fish_seen_subcommand_from search' -l offset -x -d 'Skip the first N hits'
complete -c quire -n '__fish_seen_subcommand_from search' -l json -d 'One JSON object per hit and line'
complete -c quire -n '__fish_seen_subcommand_from search' -l vimgrep -d 'FILE:LINE:COLUMN:TEXT lines'
complete -c quire -n '__fish_seen_subcommand_from search' -l files -d 'Only the names of the files with hits'
complete -c quire -n '__fish_seen_subcommand_from search' -l color -x -a 'auto always never' -d 'Colour the output'
complete -c quire -n '__fish_seen_subcommand_from search' -l sync -d 'Wait until the index holds every change made before the query'
complete -c quire -n '__fish_seen_subcommand_from search' -l sync-timeout -x -d 'How long --sync waits for quired (ms)'

# status, links, backlinks
complete -c quire -n '__fish_seen_subcommand_from status' -l json -d 'One JSON object'
complete -c quire -n '__fish_seen_subcommand_from status' -l check -d 'Also check every page of the file'
complete -c quire -n '__fish_seen_subcommand_from links backlinks' -s n -l namespace -x -a '(__quire_namespaces)' -d 'Only links in this namespace'
complete -c quire -n '__fish_seen_subcommand_from links backlinks' -l json -d 'One JSON object per link and line'
complete -c quire -n '__fish_seen_subcommand_from links backlinks' -a '(__quire_notes)'
