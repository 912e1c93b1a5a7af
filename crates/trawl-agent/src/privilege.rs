//! Dropping root once the capture sockets are open.
//!
//! The agent starts as root (or with `CAP_NET_RAW`) to open AF_PACKET sockets, then becomes an
//! ordinary user: [`drop_to`] changes the groups, group and user, keeping only `CAP_NET_RAW`
//! (so capture jobs can open new sockets later) and nothing else — no `CAP_DAC_OVERRIDE`, no
//! `CAP_SYS_ADMIN`, no way back to root. The state directory is handed to that user first so the
//! spool stays writable.

use std::ffi::CString;
use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("no user named {0:?} on this system")]
    NoUser(String),
    #[error("dropping privileges to {user}: {call}: {source}")]
    Call {
        user: String,
        call: &'static str,
        source: io::Error,
    },
}

/// A user's ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Looks a user up by name (or takes `uid` / `uid:gid` numbers).
pub fn lookup(user: &str) -> Result<Ids, PrivilegeError> {
    if let Some((u, g)) = user.split_once(':')
        && let (Ok(uid), Ok(gid)) = (u.parse(), g.parse())
    {
        return Ok(Ids { uid, gid });
    }
    let name = CString::new(user).map_err(|_| PrivilegeError::NoUser(user.to_owned()))?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; getpwnam_r writes only into pwd and buf.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        if let Ok(uid) = user.parse::<libc::uid_t>() {
            return Ok(Ids { uid, gid: uid });
        }
        return Err(PrivilegeError::NoUser(user.to_owned()));
    }
    Ok(Ids {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

const CAP_NET_RAW: u32 = 13;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Hands `state_dir` (recursively) to `ids`, then becomes that user with only `CAP_NET_RAW`.
pub fn drop_to(user: &str, ids: Ids, state_dir: &Path) -> Result<(), PrivilegeError> {
    let fail = |call: &'static str| {
        let user = user.to_owned();
        move |source: io::Error| PrivilegeError::Call { user, call, source }
    };
    chown_tree(state_dir, ids).map_err(fail("handing over the state directory"))?;
    let check = |rc: libc::c_int, call: &'static str| {
        if rc == 0 {
            Ok(())
        } else {
            Err(fail(call)(io::Error::last_os_error()))
        }
    };
    // SAFETY: plain system calls with valid arguments.
    unsafe {
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0),
            "prctl(PR_SET_KEEPCAPS)",
        )?;
        check(libc::setgroups(0, std::ptr::null()), "setgroups")?;
        check(libc::setresgid(ids.gid, ids.gid, ids.gid), "setresgid")?;
        check(libc::setresuid(ids.uid, ids.uid, ids.uid), "setresuid")?;
    }
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    data[0].effective = 1 << CAP_NET_RAW;
    data[0].permitted = 1 << CAP_NET_RAW;
    // SAFETY: header and two data words, as capset(2) version 3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    check(rc as libc::c_int, "capset")?;
    // SAFETY: as above.
    unsafe {
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0),
            "prctl(PR_SET_KEEPCAPS)",
        )?;
    }
    Ok(())
}

fn chown_tree(path: &Path, ids: Ids) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(ids.uid), Some(ids.gid))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), ids)?;
        }
    }
    Ok(())
}

/// The calling process's user id.
pub fn current_uid() -> libc::uid_t {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_name_or_number() {
        assert_eq!(lookup("root").unwrap(), Ids { uid: 0, gid: 0 });
        assert_eq!(
            lookup("65534:65534").unwrap(),
            Ids {
                uid: 65534,
                gid: 65534
            }
        );
        assert!(matches!(
            lookup("no-such-user-here"),
            Err(PrivilegeError::NoUser(_))
        ));
    }
}
