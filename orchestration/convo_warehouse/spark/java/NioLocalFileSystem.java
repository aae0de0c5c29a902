package org.convowarehouse.hadoop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system (checksums included), setting a file's permission
 * bits with java.nio instead of a {@code chmod} process.
 *
 * <p>Without Hadoop's native library, which the pyspark wheel does not ship,
 * {@link RawLocalFileSystem#setPermission} starts a {@code chmod} process for
 * every file and directory a write creates: about ten per statement of
 * small Parquet writes, a few milliseconds each. The Spark settings
 * ({@code convo_warehouse.spark.session.spark_settings}) make this the
 * {@code file:} scheme's file system; the Makefile builds it into pyspark's
 * jars folder.
 */
public class NioLocalFileSystem extends LocalFileSystem {
    public NioLocalFileSystem() {
        super(new Raw());
    }

    /** The raw local file system underneath the checksums. */
    public static class Raw extends RawLocalFileSystem {
        @Override
        public void setPermission(Path path, FsPermission permission) throws IOException {
            short mode = permission.toShort();
            if ((mode & ~0777) != 0) {
                // sticky, setuid or setgid bits: java.nio cannot set them
                super.setPermission(path, permission);
                return;
            }
            // PosixFilePermission lists owner, group, others, each read, write, execute:
            // the nine mode bits from the highest
            PosixFilePermission[] bitsFromHighest = PosixFilePermission.values();
            Set<PosixFilePermission> granted = EnumSet.noneOf(PosixFilePermission.class);
            for (int bit = 0; bit < 9; bit++) {
                if ((mode & (0400 >> bit)) != 0) {
                    granted.add(bitsFromHighest[bit]);
                }
            }
            Files.setPosixFilePermissions(pathToFile(path).toPath(), granted);
        }
    }
}
