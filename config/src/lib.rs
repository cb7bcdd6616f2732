//! placeholder
#[cfg(test)]
mod t {
    use toml::de::{DeTable, DeValue, ValueDeserializer};
    use serde::Deserialize;
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S { org: String, n: Option<u32>, app: Option<A> }
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct A { id: u64 }
    fn show(text: &str, r: std::ops::Range<usize>) -> String { format!("{:?}={:?}", r.clone(), &text[r.start.min(text.len())..r.end.min(text.len())]) }
    #[test]
    fn exp() {
        let text = "x = 1\n\n[[source]]\nname = \"a\"\norg = \"o\"\n\n[[source]]\norg = 5\nn = \"s\"\n[source.app]\nid = 1\nzz = 2\n[foo]\nbar=1\n";
        let doc = DeTable::parse(text).unwrap();
        println!("doc span {}", show(text, doc.span()));
        for (k, v) in doc.get_ref().iter() {
            println!("key {} {} val {}", k.get_ref(), show(text, k.span()), show(text, v.span()));
            if let DeValue::Array(a) = v.get_ref() {
                for e in a.iter() {
                    println!("  elem {}", show(text, e.span()));
                    let mut e = e.clone();
                    if let DeValue::Table(t) = e.get_mut() { t.remove("name"); }
                    let r = S::deserialize(ValueDeserializer::from(e));
                    match r { Ok(s) => println!("  ok {s:?}"), Err(err) => println!("  err {:?} span {:?}", err.message(), err.span().map(|s| show(text, s))) }
                }
            }
        }
        for bad in ["a = ", "[x]\n a = 1\n a = 2", "a = \"\n", "x = 1\n[[x]]\n"] {
            let e = DeTable::parse(bad).unwrap_err();
            println!("bad {:?}: {:?} {:?}", bad, e.message(), e.span());
        }
        let e = DeTable::parse_recoverable("a = \nb = \n[c]\nd = \"").1;
        for e in e { println!("rec {:?} {:?}", e.message(), e.span()); }
    }
}
