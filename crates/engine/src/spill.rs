//! Spill space shared by an organization's queries (`BURNRATE_SPILL_MAX_PER_ORG`).
//!
//! Each query spills into a directory of its own under its own cap (`BURNRATE_SPILL_MAX`,
//! DataFusion's disk manager). What all of one organization's running queries have written
//! together is counted here as well, so a tenant running its few queries at once cannot fill
//! the disk every other tenant spills to: each query's files are made by its own disk manager,
//! wrapped in a file that counts its bytes against the organization before writing them and
//! gives them back when the file goes.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use burnrate_core::OrgId;
use datafusion::common::Result;
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::spill_file::{SpillFile, SpillWriter, TempFileFactory};
use futures::Stream;

/// Every organization's spill space in use, made when its first query spills.
pub(crate) struct Spills {
    max_per_org: u64,
    orgs: Mutex<HashMap<OrgId, Weak<OrgSpill>>>,
}

impl Spills {
    pub(crate) fn new(max_per_org: u64) -> Self {
        Self { max_per_org, orgs: Mutex::new(HashMap::new()) }
    }

    /// `org`'s account, shared by its running queries; it lives as long as one of them does.
    pub(crate) fn of(&self, org: OrgId) -> Arc<OrgSpill> {
        let mut orgs = self.orgs.lock().expect("spills lock");
        if let Some(live) = orgs.get(&org).and_then(Weak::upgrade) {
            return live;
        }
        orgs.retain(|_, account| account.strong_count() > 0);
        let account = Arc::new(OrgSpill { used: AtomicU64::new(0), max: self.max_per_org });
        orgs.insert(org, Arc::downgrade(&account));
        account
    }
}

/// What one organization's queries have spilled and may spill.
pub(crate) struct OrgSpill {
    used: AtomicU64,
    max: u64,
}

impl OrgSpill {
    /// Counts `len` more bytes, unless they would take the organization over its share.
    fn take(&self, len: u64) -> std::io::Result<()> {
        let now = self.used.fetch_add(len, Ordering::Relaxed) + len;
        if now > self.max {
            self.used.fetch_sub(len, Ordering::Relaxed);
            metrics::counter!("burnrate_query_spill_refusals_total").increment(1);
            return Err(std::io::Error::other(format!(
                "the organization's queries running now have spilled their {} to disk \
                 (BURNRATE_SPILL_MAX_PER_ORG); try again when they are done, or ask for less",
                human_bytes(self.max)
            )));
        }
        metrics::counter!("burnrate_query_spilled_bytes_total").increment(len);
        Ok(())
    }

    fn give_back(&self, len: u64) {
        self.used.fetch_sub(len, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n => format!("{n} bytes"),
    }
}

/// One query's spill files: made by its own disk manager, counted against its organization.
pub(crate) struct CountedFiles {
    query: Arc<DiskManager>,
    org: Arc<OrgSpill>,
}

impl CountedFiles {
    pub(crate) fn new(query: Arc<DiskManager>, org: Arc<OrgSpill>) -> Self {
        Self { query, org }
    }
}

impl TempFileFactory for CountedFiles {
    fn create_temp_file(&self, description: &str) -> Result<Arc<dyn SpillFile>> {
        let file = self.query.create_tmp_file(description)?;
        Ok(Arc::new(CountedFile { file, org: Arc::clone(&self.org), written: Arc::new(AtomicU64::new(0)) }))
    }
}

struct CountedFile {
    file: Arc<dyn SpillFile>,
    org: Arc<OrgSpill>,
    written: Arc<AtomicU64>,
}

impl Drop for CountedFile {
    fn drop(&mut self) {
        self.org.give_back(self.written.load(Ordering::Relaxed));
    }
}

impl SpillFile for CountedFile {
    fn path(&self) -> Option<&Path> {
        self.file.path()
    }

    fn size(&self) -> Option<u64> {
        self.file.size()
    }

    fn read_stream(&self) -> Result<Pin<Box<dyn Stream<Item = Result<bytes::Bytes>> + Send>>> {
        self.file.read_stream()
    }

    fn open_writer(&self) -> Result<Box<dyn SpillWriter>> {
        Ok(Box::new(CountedWriter {
            writer: self.file.open_writer()?,
            org: Arc::clone(&self.org),
            written: Arc::clone(&self.written),
        }))
    }
}

struct CountedWriter {
    writer: Box<dyn SpillWriter>,
    org: Arc<OrgSpill>,
    written: Arc<AtomicU64>,
}

impl Write for CountedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = buf.len() as u64;
        self.org.take(len)?;
        match self.writer.write(buf) {
            Ok(n) => {
                self.org.give_back(len - n as u64);
                self.written.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                self.org.give_back(len);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl SpillWriter for CountedWriter {
    fn finish(&mut self) -> Result<()> {
        self.writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};

    use super::*;

    fn query_files(root: &Path, org: Arc<OrgSpill>) -> CountedFiles {
        let disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![root.to_owned()]))
            .with_max_temp_directory_size(1 << 20)
            .build()
            .unwrap();
        CountedFiles::new(Arc::new(disk), org)
    }

    #[test]
    fn an_organizations_queries_share_its_spill_space_and_get_it_back_when_their_files_go() {
        let root = tempfile::tempdir().unwrap();
        let spills = Spills::new(100_000);
        let (acme, globex) = (OrgId::from_uuid(uuid::Uuid::new_v4()), OrgId::from_uuid(uuid::Uuid::new_v4()));
        let first = query_files(root.path(), spills.of(acme));
        let second = query_files(root.path(), spills.of(acme));
        let other = query_files(root.path(), spills.of(globex));

        let a = first.create_temp_file("sort").unwrap();
        a.open_writer().unwrap().write_all(&[7; 60_000]).unwrap();
        // The second query of the same organization meets what the first has written.
        let b = second.create_temp_file("sort").unwrap();
        let mut writer = b.open_writer().unwrap();
        writer.write_all(&[7; 30_000]).unwrap();
        let refused = writer.write_all(&[7; 30_000]).unwrap_err().to_string();
        assert!(
            refused.starts_with("the organization's queries running now have spilled their 100000 bytes to disk"),
            "{refused}"
        );
        // Another organization's queries have their own.
        other.create_temp_file("sort").unwrap().open_writer().unwrap().write_all(&[7; 90_000]).unwrap();

        // The first query's file goes: its bytes are the organization's again.
        assert_eq!(spills.of(acme).used(), 90_000);
        drop(a);
        assert_eq!(spills.of(acme).used(), 30_000);
        writer.write_all(&[7; 60_000]).unwrap();
        drop((writer, b));
        assert_eq!(spills.of(acme).used(), 0);
    }

    #[test]
    fn an_account_lives_as_long_as_a_query_of_its_organization() {
        let spills = Spills::new(10);
        let org = OrgId::from_uuid(uuid::Uuid::new_v4());
        let held = spills.of(org);
        held.take(5).unwrap();
        assert_eq!(spills.of(org).used(), 5, "shared while a query holds it");
        drop(held);
        assert_eq!(spills.of(org).used(), 0, "made anew once none does");
    }
}
