//! Which server the suite runs against.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Ferretcd,
    /// etcd 3.4: needs `--enable-v2`.
    Etcd,
}
