/// Refuses the regular expressions whose matching can take exponential time in a backtracking engine
/// (Swift's `Regex`, like Python's `re`): a repeated group whose body itself repeats or alternates,
/// as in `(.*)*x` or `(a|aa)+b`. Patterns come from files and recipes (PEFT `rank_pattern` keys,
/// `re:` tensor selectors) and are matched against every tensor name, so one such pattern could hang
/// a run. Everything else is polynomial in the name's length, and names are short.
///
/// Invariant: the check is syntactic and conservative. It reads escapes (`\x`), character classes
/// (`[...]`) and group openers (`(?:`, `(?<name>`, ...) as such. A body "repeats or alternates"
/// when it holds `*`, `+`, `?`, `{` or `|`; a group is repeated by `*`, `+` or `{` after it (an
/// optional group, `(...)?`, is tried at most twice and is allowed).
public enum RegexSafety {
    /// Why `pattern` can backtrack exponentially, or nil when it cannot in this sense.
    public static func exponentialBacktracking(in pattern: String) -> String? {
        let s = Array(pattern.unicodeScalars)
        // One entry per open group: whether its body repeats or alternates.
        var open: [Bool] = []
        var i = 0
        func isQuantifier(_ k: Int) -> Bool { k < s.count && ["*", "+", "?", "{"].contains(s[k]) }
        func repeats(_ k: Int) -> Bool { k < s.count && ["*", "+", "{"].contains(s[k]) }
        while i < s.count {
            switch s[i] {
            case "\\":
                i += 2
                continue
            case "[":
                // A class: `]` right after `[` or `[^` is a member; escapes inside are skipped.
                var k = i + 1
                if k < s.count && s[k] == "^" { k += 1 }
                if k < s.count && s[k] == "]" { k += 1 }
                while k < s.count && s[k] != "]" { k += s[k] == "\\" ? 2 : 1 }
                i = k + 1
                continue
            case "(":
                open.append(false)
                if i + 1 < s.count && s[i + 1] == "?" { i += 2; continue }   // (?:  (?<name>  (?=  ...
            case ")":
                let risky = open.popLast() ?? false
                if risky && repeats(i + 1) {
                    return "it repeats a group that itself repeats or alternates (nested repetition can take exponential time)"
                }
                if !open.isEmpty && (risky || isQuantifier(i + 1)) { open[open.count - 1] = true }
            case "|":
                if !open.isEmpty { open[open.count - 1] = true }
            case "*", "+", "?", "{":
                if !open.isEmpty { open[open.count - 1] = true }
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
