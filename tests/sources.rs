//! File sources on real files: the bundled datasets, and bad inputs that must fail clearly.

use std::path::Path;

use crate::common::dataset;
use polars::prelude::{Column, DataFrame};
use prescale::series::{Aggregation, SeriesError};
use prescale::source::{self, table, LoadOptions, SourceError};

fn load(path: &Path) -> Result<Vec<prescale::series::Series>, SourceError> {
    source::load(path, &LoadOptions::default())
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bundled_nab_series_load_on_their_grid() {
    let taxi = load(&dataset("nyc_taxi.csv")).unwrap().remove(0);
    assert_eq!(
        (taxi.len(), taxi.step(), taxi.missing()),
        (10_320, 1_800_000, 0)
    );
    assert_eq!(taxi.labels().name, "nyc_taxi");
    assert_eq!(taxi.values()[..2], [10844.0, 8127.0]);
    let amzn = load(&dataset("Twitter_volume_AMZN.csv")).unwrap().remove(0);
    assert_eq!((amzn.len(), amzn.step()), (15_831, 300_000));
    assert_eq!(amzn.start(), 1_424_986_973_000); // 2015-02-26 21:42:53 UTC
}

#[test]
fn m4_wide_files_load_every_series() {
    let train = load(&dataset("m4-hourly/Hourly-train.csv")).unwrap();
    let test = load(&dataset("m4-hourly/Hourly-test.csv")).unwrap();
    assert_eq!((train.len(), test.len()), (414, 414));
    assert_eq!(train[0].labels().name, "H1");
    assert_eq!(train[0].len(), 700);
    assert_eq!(train[0].values()[..3], [605.0, 586.0, 586.0]);
    assert!(test.iter().all(|s| s.len() == 48 && s.missing() == 0));
    assert!(train
        .iter()
        .all(|s| s.missing() == 0 && s.step() == 3_600_000));
}

#[test]
fn unix_seconds_millis_and_rfc3339_files_load_alike() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(
            &dir,
            "secs.csv",
            "ts,value\n1424986973,1\n1424987273,2\n1424987573,3\n",
        ),
        write(
            &dir,
            "millis.csv",
            "ts,value\n1424986973000,1\n1424987273000,2\n1424987573000,3\n",
        ),
        write(
            &dir,
            "rfc.csv",
            "time,load\n2015-02-26T21:42:53Z,1\n2015-02-26T21:47:53Z,2\n2015-02-26T21:52:53Z,3\n",
        ),
    ];
    for path in files {
        let s = load(&path).unwrap().remove(0);
        assert_eq!(
            (s.start(), s.step(), s.values()),
            (1_424_986_973_000, 300_000, &[1.0, 2.0, 3.0][..]),
            "{}",
            path.display()
        );
    }
}

#[test]
fn chosen_columns_missing_cells_and_irregular_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "wide.csv",
        "host,when,rps\na,0,1\na,60,\na,120,NaN\na,180,4\n",
    );
    let options = LoadOptions {
        columns: source::ColumnSpec {
            time: Some("when".into()),
            value: Some("rps".into()),
            time_unit: None,
        },
        ..LoadOptions::default()
    };
    let s = source::load(&path, &options).unwrap().remove(0);
    assert_eq!(s.missing(), 2);
    assert_eq!(s.values()[3], 4.0);

    // Jittered timestamps are regularized onto the inferred step; (t-60, t] rule.
    let path = write(
        &dir,
        "jitter.csv",
        "ts,value\n0,1\n60,2\n121,3\n180,4\n240,5\n",
    );
    let s = load(&path).unwrap().remove(0);
    assert_eq!(s.step(), 60_000);
    assert_eq!(s.values()[..2], [1.0, 2.0]);
    assert!(s.values()[2].is_nan()); // nothing in (60, 120]
    assert_eq!(s.values()[3..], [4.0, 5.0]);
    let mean = source::load(
        &path,
        &LoadOptions {
            aggregation: Aggregation::Mean,
            ..LoadOptions::default()
        },
    )
    .unwrap()
    .remove(0);
    assert_eq!(mean.values()[3], 3.5); // 121 and 180 both fall in (120, 180]
}

#[test]
fn parquet_round_trips_a_series() {
    let taxi = load(&dataset("nyc_taxi.csv"))
        .unwrap()
        .remove(0)
        .slice(0..500);
    let mut df = DataFrame::new(
        taxi.len(),
        vec![
            table::timestamp_column("timestamp", taxi.timestamps().collect()).unwrap(),
            Column::new("value".into(), taxi.values()),
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/taxi.parquet");
    table::write_table(&mut df, &path).unwrap();
    let back = load(&path).unwrap().remove(0);
    assert_eq!(
        (back.start(), back.step(), back.values()),
        (taxi.start(), taxi.step(), taxi.values())
    );
    assert_eq!(back.labels().name, "taxi");
}

#[test]
fn bad_files_fail_with_the_line_named() {
    let dir = tempfile::tempdir().unwrap();

    let path = write(
        &dir,
        "bad_time.csv",
        "timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,2\nnoon,3\n",
    );
    let err = load(&path).unwrap_err();
    assert!(
        matches!(&err, SourceError::BadTimestamp { line: 4, text, .. } if text == "noon"),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 4"), "{err}");

    let path = write(&dir, "dup.csv", "ts,value\n100,1\n200,2\n200,3\n");
    let err = load(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            SourceError::InvalidRow {
                line: 4,
                source: SeriesError::Duplicate { .. },
                ..
            }
        ),
        "{err:?}"
    );

    let path = write(&dir, "back.csv", "ts,value\n100,1\n300,2\n200,3\n");
    let err = load(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            SourceError::InvalidRow {
                line: 4,
                source: SeriesError::NotIncreasing { .. },
                ..
            }
        ),
        "{err:?}"
    );

    let path = write(&dir, "text.csv", "ts,value\n100,1\n200,lots\n");
    let err = load(&path).unwrap_err();
    assert!(
        matches!(&err, SourceError::BadValue { line: 3, text, .. } if text == "lots"),
        "{err:?}"
    );

    let path = write(&dir, "inf.csv", "ts,value\n100,1\n200,inf\n");
    let err = load(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            SourceError::InvalidRow {
                line: 3,
                source: SeriesError::NonFinite { .. },
                ..
            }
        ),
        "{err:?}"
    );

    let path = write(&dir, "empty.csv", "");
    assert!(matches!(
        load(&path).unwrap_err(),
        SourceError::Empty { .. }
    ));
    let path = write(&dir, "header_only.csv", "timestamp,value\n");
    assert!(matches!(
        load(&path).unwrap_err(),
        SourceError::Empty { .. }
    ));

    let path = write(&dir, "cols.csv", "ts,value\n1,2\n");
    let options = LoadOptions {
        columns: source::ColumnSpec {
            time: None,
            value: Some("rps".into()),
            time_unit: None,
        },
        ..LoadOptions::default()
    };
    let err = source::load(&path, &options).unwrap_err();
    assert!(
        matches!(&err, SourceError::MissingColumn { column, .. } if column == "rps"),
        "{err:?}"
    );

    let err = load(&dir.path().join("absent.csv")).unwrap_err();
    assert!(
        matches!(&err, SourceError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );

    let path = write(&dir, "broken.parquet", "this is not parquet");
    assert!(matches!(
        load(&path).unwrap_err(),
        SourceError::Table { .. }
    ));
}
