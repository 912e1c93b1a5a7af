//! `apps.toml`: names for applications, hosts and circuits.
//!
//! ```toml
//! # Applications, tried in this order: a flow belongs to the first whose server it goes to or
//! # comes from (either end of the flow may be the server).
//! [[app]]
//! name = "GroupWise"
//! servers = ["155.94.114.164", "155.94.114.165"]  # addresses or CIDR prefixes
//! ports = [1677, 1867]                             # optional: any port when absent
//! protocol = "tcp"                                 # optional: tcp, udp, icmp, icmpv6, sctp,
//!                                                  # or an IP protocol number; any when absent
//!
//! # Names shown beside addresses in the top sources and destinations.
//! [hosts]
//! "155.94.155.23" = "ra01u04"
//!
//! # Names shown beside circuits: "dlci N" (Frame Relay), "vlan N", "untagged".
//! [circuits]
//! "dlci 460" = "London"
//! ```
//!
//! Every key is checked: an unknown one, a bad address or prefix, a port out of range, or a
//! protocol without a number is an error naming the file, the line and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use crate::CircuitId;

/// An address prefix: `10.1.0.0/16`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn parse(s: &str) -> Option<Prefix> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l.trim().parse::<u8>().ok().filter(|&l| l <= max)?,
            None => max,
        };
        Some(Prefix { addr, len })
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.len as u32).unwrap_or(0);
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.len as u32).unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One application: its servers, ports and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub servers: Vec<Prefix>,
    /// Empty: any port.
    pub ports: Vec<u16>,
    /// `None`: any IP protocol.
    pub protocol: Option<u8>,
}

impl App {
    /// True if `(protocol, addr, port)` is one of this application's servers.
    pub fn serves(&self, protocol: u8, addr: IpAddr, port: u16) -> bool {
        self.protocol.is_none_or(|p| p == protocol)
            && (self.ports.is_empty() || self.ports.contains(&port))
            && self.servers.iter().any(|s| s.contains(addr))
    }
}

/// What `apps.toml` says; [`Apps::default`] names nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Apps {
    pub apps: Vec<App>,
    pub hosts: BTreeMap<IpAddr, String>,
    pub circuits: BTreeMap<CircuitId, String>,
}

/// A fault in an `apps.toml`: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppsError {
    pub file: String,
    /// 1-based; 0 when the position is unknown.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for AppsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for AppsError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    app: Vec<AppToml>,
    #[serde(default)]
    hosts: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    circuits: BTreeMap<Spanned<String>, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppToml {
    name: String,
    servers: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    ports: Vec<Spanned<i64>>,
    #[serde(default)]
    protocol: Option<Spanned<toml::Value>>,
}

impl Apps {
    /// Parses the text of an `apps.toml`; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Apps, AppsError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |offset: usize, message: String| AppsError {
            file: file.to_string(),
            line: line_of(offset),
            message,
        };
        let parsed: FileToml = toml::from_str(text).map_err(|e| AppsError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(s.start)).unwrap_or(0),
            message: e.message().trim().to_string(),
        })?;
        let mut out = Apps::default();
        for a in parsed.app {
            let name = a.name.trim().to_string();
            if a.servers.get_ref().is_empty() {
                return Err(err(
                    a.servers.span().start,
                    format!("app \"{name}\": servers: give at least one address or prefix"),
                ));
            }
            let mut servers = Vec::new();
            for s in a.servers.get_ref() {
                servers.push(Prefix::parse(s.get_ref()).ok_or_else(|| {
                    err(
                        s.span().start,
                        format!(
                            "app \"{name}\": servers: \"{}\" is not an IP address or CIDR prefix \
                             (e.g. 10.1.2.3 or 10.1.0.0/16)",
                            s.get_ref()
                        ),
                    )
                })?);
            }
            let mut ports = Vec::new();
            for p in &a.ports {
                let v = *p.get_ref();
                let port = u16::try_from(v).map_err(|_| {
                    err(
                        p.span().start,
                        format!("app \"{name}\": ports: {v} is not a port (0 to 65535)"),
                    )
                })?;
                ports.push(port);
            }
            let protocol = match &a.protocol {
                None => None,
                Some(p) => Some(protocol_number(p.get_ref()).ok_or_else(|| {
                    err(
                        p.span().start,
                        format!(
                            "app \"{name}\": protocol: {} is not tcp, udp, icmp, icmpv6, sctp, \
                             gre, esp or an IP protocol number (0 to 255)",
                            p.get_ref()
                        ),
                    )
                })?),
            };
            out.apps.push(App {
                name,
                servers,
                ports,
                protocol,
            });
        }
        for (k, v) in parsed.hosts {
            let addr: IpAddr = k.get_ref().trim().parse().map_err(|_| {
                err(
                    k.span().start,
                    format!("hosts: \"{}\" is not an IP address", k.get_ref()),
                )
            })?;
            out.hosts.insert(addr, v);
        }
        for (k, v) in parsed.circuits {
            let c = CircuitId::parse(k.get_ref()).ok_or_else(|| {
                err(
                    k.span().start,
                    format!(
                        "circuits: \"{}\" is not a circuit (\"dlci N\", \"vlan N\" or \"untagged\")",
                        k.get_ref()
                    ),
                )
            })?;
            out.circuits.insert(c, v);
        }
        Ok(out)
    }

    /// The first application whose server is one end of a flow: its index.
    pub fn match_flow(&self, protocol: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> Option<u16> {
        self.apps
            .iter()
            .position(|app| app.serves(protocol, a.0, a.1) || app.serves(protocol, b.0, b.1))
            .map(|i| i as u16)
    }

    /// The name shown beside one endpoint in the top lists: its host name, the application it
    /// serves, or both (`host - application`).
    pub fn endpoint_name(&self, protocol: u8, addr: IpAddr, port: u16) -> Option<String> {
        let host = self.hosts.get(&addr);
        let app = self.apps.iter().find(|a| a.serves(protocol, addr, port));
        match (host, app) {
            (Some(h), Some(a)) => Some(format!("{h} - {}", a.name)),
            (Some(h), None) => Some(h.clone()),
            (None, Some(a)) => Some(a.name.clone()),
            (None, None) => None,
        }
    }
}

fn protocol_number(v: &toml::Value) -> Option<u8> {
    match v {
        toml::Value::Integer(n) => u8::try_from(*n).ok(),
        toml::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(6),
            "udp" => Some(17),
            "icmp" => Some(1),
            "icmpv6" | "ipv6-icmp" => Some(58),
            "sctp" => Some(132),
            "gre" => Some(47),
            "esp" => Some(50),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = Prefix::parse("10.1.0.0/16").unwrap();
        assert!(p.contains("10.1.255.3".parse().unwrap()));
        assert!(!p.contains("10.2.0.1".parse().unwrap()));
        assert!(
            Prefix::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Prefix::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8:1::1".parse().unwrap())
        );
        assert!(
            !Prefix::parse("10.0.0.1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert_eq!(Prefix::parse("10.0.0.0/33"), None);
        assert_eq!(Prefix::parse("nope"), None);
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../examples/apps.toml");
        let apps = Apps::from_toml(text, "examples/apps.toml").unwrap();
        assert!(apps.apps.len() >= 3);
        assert!(!apps.hosts.is_empty());
        assert!(!apps.circuits.is_empty());
    }

    #[test]
    fn first_matching_app_wins_on_either_end() {
        let text = r#"
[[app]]
name = "Web"
servers = ["192.0.2.0/24"]
ports = [80, 443]
protocol = "tcp"

[[app]]
name = "Everything"
servers = ["0.0.0.0/0"]
"#;
        let apps = Apps::from_toml(text, "a.toml").unwrap();
        let web = ("192.0.2.7".parse().unwrap(), 443);
        let client = ("10.0.0.1".parse().unwrap(), 40000);
        assert_eq!(apps.match_flow(6, client, web), Some(0));
        assert_eq!(apps.match_flow(6, web, client), Some(0));
        assert_eq!(apps.match_flow(17, client, web), Some(1), "UDP is not Web");
        assert_eq!(apps.endpoint_name(6, web.0, 443).as_deref(), Some("Web"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad_addr = "[[app]]\nname = \"X\"\nservers = [\"10.0.0.1\",\n  \"10.0.0.300\"]\n";
        let e = Apps::from_toml(bad_addr, "apps.toml").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(
            e.to_string()
                .starts_with("apps.toml:4: app \"X\": servers:"),
            "{e}"
        );

        let bad_port = "[[app]]\nname = \"X\"\nservers = [\"10.0.0.1\"]\nports = [70000]\n";
        let e = Apps::from_toml(bad_port, "apps.toml").unwrap_err();
        assert_eq!(
            (e.line, e.message.contains("ports: 70000")),
            (4, true),
            "{e}"
        );

        let bad_proto = "[[app]]\nname = \"X\"\nservers = [\"10.0.0.1\"]\nprotocol = \"tpc\"\n";
        let e = Apps::from_toml(bad_proto, "apps.toml").unwrap_err();
        assert_eq!((e.line, e.message.contains("protocol")), (4, true), "{e}");

        let unknown = "[[app]]\nname = \"X\"\nservers = [\"10.0.0.1\"]\nport = 80\n";
        let e = Apps::from_toml(unknown, "apps.toml").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("port"), "{e}");

        let bad_circuit = "[circuits]\n\"dlc 4\" = \"x\"\n";
        let e = Apps::from_toml(bad_circuit, "apps.toml").unwrap_err();
        assert_eq!(e.line, 2, "{e}");

        let syntax = "[[app]\nname = 1\n";
        let e = Apps::from_toml(syntax, "apps.toml").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }
}
